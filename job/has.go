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
	if from := remote.Caller(ctx); from != "" && from != m.self && m.cfg.MayAsk != nil && !m.cfg.MayAsk(from) {
		return hasReply{}, fmt.Errorf("%w: this node does not tell %s what it holds", ErrNotFound, from)
	}
	if len(req.CIDs) > maxHas {
		return hasReply{}, fmt.Errorf("%w: %d CIDs asked, at most %d", ErrBadSpec, len(req.CIDs), maxHas)
	}
	// A file's root block alone says little: a node that listed a
	// directory has its files' roots and nothing more. A file counts as
	// held when it is one block, or pinned (so whole), or under a pinned
	// input.
	// The pins are listed only when a held file is more than one block,
	// and once per question.
	var pinned map[string]bool
	isPinned := func(key string) bool {
		if pinned == nil {
			pinned = map[string]bool{}
			if pins, err := m.cfg.Content.Pins(ctx); err == nil {
				for _, p := range pins {
					pinned[p.CID.KeyString()] = true
				}
			}
		}
		return pinned[key]
	}
	out := hasReply{Has: make([]bool, len(req.CIDs))}
	for i, b := range req.CIDs {
		c, err := cid.Cast(b)
		if err != nil {
			continue
		}
		if has, _ := m.cfg.Content.Has(ctx, c); !has {
			continue
		}
		out.Has[i] = c.Type() == cid.Raw || len(req.Input) > 0 && isPinned(string(req.Input)) || isPinned(c.KeyString())
	}
	return out, nil
}
