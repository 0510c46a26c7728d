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
	out := hasReply{Has: make([]bool, len(req.CIDs))}
	for i, b := range req.CIDs {
		c, err := cid.Cast(b)
		if err != nil {
			continue
		}
		out.Has[i], _ = m.cfg.Content.Has(ctx, c)
	}
	return out, nil
}
