package nube

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/space"
)

// runSpaces gives the service layer the space layer: a caller lends one
// run its rights in a space, and the runner borrows them with the node's
// key. It reaches the space manager when it is called, so the layers can
// start in either order.
type runSpaces struct{ n *Node }

func (r runSpaces) manager() (*space.Manager, error) {
	if r.n.spaces == nil {
		return nil, fmt.Errorf("%w: the node has no space layer", service.ErrNotAllowed)
	}
	return r.n.spaces, nil
}

func (r runSpaces) Lend(ctx context.Context, id string, runner peer.ID, write bool, prefix, purpose string, until time.Time) ([]byte, error) {
	m, err := r.manager()
	if err != nil {
		return nil, err
	}
	owner, name, err := space.SplitID(id)
	if err != nil {
		return nil, err
	}
	s, err := m.Open(owner, name)
	if err != nil {
		return nil, err
	}
	rights := space.Read
	if write {
		rights |= space.Write
	}
	return s.Lend(ctx, space.LoanOptions{Runner: runner, Rights: rights, Prefix: prefix, Until: until, For: purpose})
}

func (r runSpaces) Borrow(ctx context.Context, loan []byte, purpose string) (service.SpaceLoan, error) {
	m, err := r.manager()
	if err != nil {
		return nil, err
	}
	b, err := m.Borrow(ctx, loan, r.n.nodeKey, purpose)
	if err != nil {
		return nil, err
	}
	return borrowed{b}, nil
}

func (runSpaces) Inspect(loan []byte) (service.LoanTerms, error) {
	l, err := space.ParseLoan(loan)
	if err != nil {
		return service.LoanTerms{}, err
	}
	return service.LoanTerms{Space: l.Space(), Issuer: l.Issuer(), Runner: l.Runner(), Write: l.Rights()&space.Write != 0,
		Prefix: l.Prefix(), Purpose: l.For(), Until: l.Until()}, nil
}

// borrowed is a space.Borrowed as the service layer sees a loan.
type borrowed struct{ b *space.Borrowed }

func (b borrowed) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	return b.b.Get(ctx, key)
}
func (b borrowed) Put(ctx context.Context, key string, r io.Reader) error {
	return b.b.Put(ctx, key, r)
}
func (b borrowed) Delete(ctx context.Context, key string) error { return b.b.Delete(ctx, key) }
func (b borrowed) Close()                                       { b.b.Close() }

func (b borrowed) List(ctx context.Context, prefix string) ([]string, error) {
	items, err := b.b.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	return keys, nil
}

// locateWait bounds how long a call looks for the nodes that hold its
// data before it runs anywhere.
const locateWait = 5 * time.Second

// maxLocate caps the holders a call looks at.
const maxLocate = 16

// locate finds the nodes that hold ref: a space's home and holders, or a
// CID's providers (this node first, if it has the root).
func (n *Node) locate(ctx context.Context, ref string) ([]peer.ID, error) {
	ctx, cancel := context.WithTimeout(ctx, locateWait)
	defer cancel()
	if c, err := cid.Decode(ref); err == nil {
		var out []peer.ID
		if ok, _ := n.content.Has(ctx, c); ok {
			out = append(out, n.host.ID())
		}
		if n.host.DHT == nil {
			return out, nil
		}
		for p := range n.host.DHT.FindProvidersAsync(ctx, c, maxLocate) {
			if p.ID != n.host.ID() {
				out = append(out, p.ID)
			}
		}
		return out, nil
	}
	owner, name, err := space.SplitID(ref)
	if err != nil {
		return nil, fmt.Errorf("near %q: want a CID or a space as OWNER/NAME: %w", ref, err)
	}
	s, err := n.spaces.Open(owner, name)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	out := []peer.ID{info.Home}
	for _, h := range info.Holders {
		if h.Peer != info.Home {
			out = append(out, h.Peer)
		}
	}
	return out, nil
}
