package job

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/remote"
)

// partsAtOnce is how many parts a reducer's node fetches at once.
const partsAtOnce = 16

// fetchReq asks a reducer's node to bring a reduce task's parts into its
// store before the reduce runs, all at once.
type fetchReq struct {
	CIDs [][]byte `cbor:"1,keyasint"`
}

// fetchReply says how many of the parts the node now holds whole, and why
// the first that failed did.
type fetchReply struct {
	Fetched int    `cbor:"1,keyasint"`
	Err     string `cbor:"2,keyasint,omitempty"`
}

// fetchFn is how a coordinator has a reducer's node fetch the parts of its
// reduce from every mapper in parallel. The reduce module then opens each
// part from its own store, one after the other as the contract says, and
// waits on no network.
var fetchFn = remote.Declare[fetchReq, fetchReply]("nube.job.fetch")

// serveFetch fetches the parts asked for, partsAtOnce at a time, each
// from whichever nodes the content layer's fetcher finds holding it (the
// mapper that added it, and any other). It returns when all are in, or
// ctx (the caller's reduce attempt) ends.
func (m *Manager) serveFetch(ctx context.Context, req fetchReq) (fetchReply, error) {
	if len(req.CIDs) > maxHas {
		return fetchReply{}, fmt.Errorf("%w: %d parts asked, at most %d", ErrBadSpec, len(req.CIDs), maxHas)
	}
	cids := make([]cid.Cid, 0, len(req.CIDs))
	for _, b := range req.CIDs {
		c, err := cid.Cast(b)
		if err != nil {
			return fetchReply{}, fmt.Errorf("%w: a part that is not a CID: %w", ErrBadSpec, err)
		}
		cids = append(cids, c)
	}
	var (
		mu    sync.Mutex
		out   fetchReply
		wg    sync.WaitGroup
		slots = make(chan struct{}, partsAtOnce)
	)
	for _, c := range cids {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return out, ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-slots }()
			err := m.cfg.Content.Fetch(ctx, c, nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if out.Err == "" {
					out.Err = fmt.Sprintf("part %s: %v", c, err)
				}
				return
			}
			out.Fetched++
		})
	}
	wg.Wait()
	return out, nil
}

// fetchParts has node fetch reduce task t's parts, all at once, before
// its reduce runs. A part it could not fetch is left to the module's own
// open, which fetches it again (and fails the run if it cannot).
func (c *coord) fetchParts(ctx context.Context, t *task, node peer.ID) {
	var parts [][]byte
	c.mu.Lock()
	for _, mt := range c.rec.Maps {
		if t.Partition < len(mt.Out) && mt.Out[t.Partition] != "" {
			if p, err := cid.Decode(mt.Out[t.Partition]); err == nil {
				parts = append(parts, p.Bytes())
			}
		}
	}
	c.mu.Unlock()
	if len(parts) == 0 {
		return
	}
	start := time.Now()
	r, err := fetchFn.At(c.m.cfg.Remote, node).Call(ctx, fetchReq{CIDs: parts})
	switch {
	case err != nil:
		c.logf(t, node, "fetching its %d parts ahead failed (the reduce fetches them itself): %v", len(parts), err)
	case r.Err != "":
		c.logf(t, node, "fetched %d of %d parts in parallel in %v; %s", r.Fetched, len(parts), time.Since(start).Round(time.Millisecond), r.Err)
	default:
		c.logf(t, node, "fetched its %d parts in parallel in %v", r.Fetched, time.Since(start).Round(time.Millisecond))
	}
}
