package job

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/nubecloud/nube/remote"
)

// maxHas caps the CIDs one has question names.
const maxHas = 4096

// hasReq asks a node which of some CIDs' root blocks it holds.
type hasReq struct {
	CIDs [][]byte `cbor:"1,keyasint"`
	// Input is the job's input root: a node that pinned it holds every
	// file under it.
	Input []byte `cbor:"2,keyasint,omitempty"`
}

// hasReply answers a hasReq, one flag per CID in its order.
type hasReply struct {
	Has []bool `cbor:"1,keyasint"`
}

// hasFn is how a coordinator learns which nodes hold a split's blocks.
var hasFn = remote.Declare[hasReq, hasReply]("nube.job.has")

func (m *Manager) serveHas(ctx context.Context, req hasReq) (hasReply, error) {
	if len(req.CIDs) > maxHas {
		return hasReply{}, fmt.Errorf("%w: %d CIDs asked, at most %d", ErrBadSpec, len(req.CIDs), maxHas)
	}
	// A file's root block alone says little: a node that listed a
	// directory has its files' roots and nothing more. A file counts as
	// held when it is one block, or pinned (so whole), or under a pinned
	// input.
	pinned := map[string]bool{}
	if pins, err := m.cfg.Content.Pins(ctx); err == nil {
		for _, p := range pins {
			pinned[p.CID.KeyString()] = true
		}
	}
	whole := len(req.Input) > 0 && pinned[string(req.Input)]
	out := hasReply{Has: make([]bool, len(req.CIDs))}
	for i, b := range req.CIDs {
		c, err := cid.Cast(b)
		if err != nil {
			continue
		}
		has, _ := m.cfg.Content.Has(ctx, c)
		out.Has[i] = has && (c.Type() == cid.Raw || whole || pinned[c.KeyString()])
	}
	return out, nil
}
