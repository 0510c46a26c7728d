package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/remote"
)

// findTimeout bounds how long Find waits for peers' catalogues.
const findTimeout = 5 * time.Second

type findQuery struct {
	Text string `cbor:"1,keyasint,omitempty"`
}

type findReply struct {
	Compute bool    `cbor:"1,keyasint,omitempty"`
	Found   []found `cbor:"2,keyasint,omitempty"`
}

type found struct {
	Descriptor []byte `cbor:"1,keyasint"`
	Ready      bool   `cbor:"2,keyasint,omitempty"` // the module is compiled here
}

// findFn searches a peer's catalogue; each node's Manager serves it
// (serveFind).
var findFn = remote.Declare[findQuery, findReply]("nube.service.find")

// serveFind answers a peer's search of this node's catalogue.
func (m *Manager) serveFind(ctx context.Context, q findQuery) (findReply, error) {
	if len(q.Text) > maxDescription {
		return findReply{}, fmt.Errorf("query is %d bytes, the limit is %d", len(q.Text), maxDescription)
	}
	r := findReply{Compute: !m.cfg.NoCompute}
	for _, in := range m.Known(q.Text) {
		if len(r.Found) == maxFound {
			break
		}
		d := in.Descriptor
		_, ready := m.rt.Cached(d.Module)
		r.Found = append(r.Found, found{Descriptor: d.raw, Ready: ready && d.Module.Defined()})
	}
	return r, nil
}

// Find searches the catalogues of this node and every connected peer
// (and, for a one-word query, of the nodes the DHT says know that name)
// for services whose name or description holds every word of query. An
// empty query lists everything. What peers return is verified and kept
// in this node's catalogue.
func (m *Manager) Find(ctx context.Context, query string) ([]Info, error) {
	ctx, cancel := context.WithTimeout(ctx, findTimeout)
	defer cancel()
	peers := m.cfg.Host.Network().Peers()
	if words := strings.Fields(query); len(words) == 1 && m.cfg.Routing != nil && CheckName(words[0]) == nil {
		seen := map[peer.ID]bool{m.self: true}
		for _, p := range peers {
			seen[p] = true
		}
		dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
		for ai := range m.cfg.Routing.FindProvidersAsync(dctx, NameKey(words[0]), 16) {
			if !seen[ai.ID] {
				seen[ai.ID] = true
				m.cfg.Host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
				peers = append(peers, ai.ID)
			}
		}
		dcancel()
	}
	learned := false // the catalogue gained a descriptor: save it
	for p, r := range findFn.OnAll(ctx, m.cfg.Remote, peers, findQuery{Text: query}) {
		if r.Err != nil {
			m.log.Debug("service find", "peer", p, "err", r.Err)
			continue
		}
		m.noteCompute(p, r.Value.Compute)
		for _, f := range r.Value.Found {
			d, err := Parse(f.Descriptor)
			if err != nil {
				m.log.Info("peer sent a bad service descriptor", "peer", p, "err", err)
				continue
			}
			if m.learn(d, p, f.Ready && r.Value.Compute) {
				learned = true
			}
		}
	}
	if learned {
		m.saveCatalog()
	}
	return m.Known(query), ctx.Err()
}

// noteCompute remembers peers that run no code, for ten minutes.
func (m *Manager) noteCompute(p peer.ID, computes bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if computes {
		delete(m.noRun, p)
	} else {
		m.noRun[p] = time.Now().Add(10 * time.Minute)
	}
}

// Resolve finds the descriptor ref names: a descriptor CID, a name, or
// name@version. A name several users have published is ambiguous unless
// this node's user is one of them; among one publisher's descriptors of a
// name, the newest wins.
func (m *Manager) Resolve(ctx context.Context, ref string) (*Descriptor, error) {
	ref = strings.TrimSpace(ref)
	if c, err := cid.Decode(ref); err == nil {
		return m.byID(ctx, c)
	}
	name, version, _ := strings.Cut(ref, "@")
	if err := CheckName(name); err != nil {
		return nil, fmt.Errorf("service %q is neither a CID nor a name: %w", ref, err)
	}
	// The catalogue answers while its knowledge of the name is fresh;
	// after that the network is asked again, so that a new version, or
	// another user publishing the same name, is seen.
	m.mu.Lock()
	fresh := time.Since(m.asked[name]) < nameFreshness
	m.mu.Unlock()
	if fresh {
		if d, err := m.choose(ref, name, version); !errors.Is(err, ErrNotFound) {
			return d, err
		}
	}
	if _, err := m.Find(ctx, name); err != nil && ctx.Err() != nil {
		return nil, err
	}
	m.mu.Lock()
	m.asked[name] = time.Now()
	m.mu.Unlock()
	return m.choose(ref, name, version)
}

// nameFreshness is how long a name found on the network is resolved from
// the catalogue alone.
const nameFreshness = 30 * time.Second

func (m *Manager) choose(ref, name, version string) (*Descriptor, error) {
	var all []*Descriptor
	m.mu.Lock()
	for _, e := range m.catalog {
		if e.d.Name == name && (version == "" || e.d.Version == version) {
			all = append(all, e.d)
		}
	}
	m.mu.Unlock()
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: no connected node knows %q", ErrNotFound, ref)
	}
	var mine []*Descriptor
	pubs := map[peer.ID]bool{}
	for _, d := range all {
		pubs[d.Publisher] = true
		if d.Publisher == m.user {
			mine = append(mine, d)
		}
	}
	if len(mine) > 0 {
		all = mine
	} else if len(pubs) > 1 {
		var names []string
		for _, d := range all {
			names = append(names, fmt.Sprintf("%s by %s (%s)", d.Label(), d.Publisher, d.id))
		}
		sort.Strings(names)
		return nil, fmt.Errorf("%w: %d users published %q; call one by CID: %s", ErrAmbiguous, len(pubs), ref, strings.Join(names, ", "))
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].Created.Equal(all[j].Created) {
			return all[i].Created.After(all[j].Created)
		}
		return all[i].id.String() < all[j].id.String()
	})
	return all[0], nil
}

// byID returns the descriptor c from the catalogue, or fetches it.
func (m *Manager) byID(ctx context.Context, c cid.Cid) (*Descriptor, error) {
	m.mu.Lock()
	e, ok := m.catalog[c]
	m.mu.Unlock()
	if ok {
		return e.d, nil
	}
	f, err := m.cfg.Content.Get(ctx, c.String())
	if err != nil {
		return nil, fmt.Errorf("fetch descriptor %s: %w", c, err)
	}
	defer f.Close()
	if f.Size() > MaxDescriptorSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrBadDescriptor, c, f.Size(), MaxDescriptorSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxDescriptorSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch descriptor %s: %w", c, err)
	}
	d, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("descriptor %s: %w", c, err)
	}
	if !d.id.Equals(c) {
		return nil, fmt.Errorf("%w: %s is %s once read", ErrBadDescriptor, c, d.id)
	}
	m.learn(d, "", false)
	return d, nil
}
