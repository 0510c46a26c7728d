package content

import (
	"context"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

// A node finds providers, and announces what it provides, on nube's own
// DHT (Config.Routing) and, if it has one, on a public one beside it
// (Config.Public: the IPFS DHT), so that content on the IPFS network can be
// fetched here and content added here can be found from there.

// routers returns the routing systems in cfg, nube's first.
func routers(cfg Config) eitherRouting {
	var out eitherRouting
	for _, r := range []routing.ContentRouting{cfg.Routing, cfg.Public} {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// eitherRouting looks providers up in every router at once and merges
// what they find, each peer once, up to the count asked for.
type eitherRouting []routing.ContentRouting

func (e eitherRouting) FindProvidersAsync(ctx context.Context, c cid.Cid, count int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo)
	if len(e) == 0 {
		close(out)
		return out
	}
	ctx, cancel := context.WithCancel(ctx)
	var (
		mu   sync.Mutex
		seen = map[peer.ID]bool{}
		wg   sync.WaitGroup
	)
	for _, r := range e {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ai := range r.FindProvidersAsync(ctx, c, count) {
				mu.Lock()
				dup := seen[ai.ID] || (count > 0 && len(seen) >= count)
				seen[ai.ID] = true
				full := count > 0 && len(seen) >= count
				mu.Unlock()
				if dup {
					continue
				}
				select {
				case out <- ai:
				case <-ctx.Done():
					return
				}
				if full {
					cancel()
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		cancel()
		close(out)
	}()
	return out
}

// announcer announces roots on one routing system: those queued as they
// are pinned, and every pinned root again each ReprovideInterval. Each
// router has its own, so that a slow one (the public DHT takes tens of
// seconds per announcement) never holds up another.
type announcer struct {
	s *Service
	r routing.ContentRouting
	q chan cid.Cid
}

func (a *announcer) announce(c cid.Cid) {
	select {
	case a.q <- c:
	default:
		a.s.log.Debug("announce queue full; the next reprovide will catch up", "cid", c)
	}
}

// run announces until the service closes: queued roots as they come, and
// every pinned root a minute after start (once the node has had time to
// join), then every ReprovideInterval.
func (a *announcer) run() {
	defer a.s.wg.Done()
	reprovide := time.NewTimer(time.Minute)
	defer reprovide.Stop()
	for {
		select {
		case <-a.s.ctx.Done():
			return
		case c := <-a.q:
			a.provide(c)
		case <-reprovide.C:
			a.reprovide()
			reprovide.Reset(a.s.cfg.ReprovideInterval)
		}
	}
}

func (a *announcer) reprovide() {
	pins, err := a.s.store.Pins(a.s.ctx)
	if err != nil {
		a.s.log.Warn("reprovide: list pins", "err", err)
		return
	}
	for _, p := range pins {
		if a.s.ctx.Err() != nil {
			return
		}
		a.provide(p.CID)
	}
}

// provide announces c (and with ProvideAll, every block under it).
func (a *announcer) provide(c cid.Cid) {
	ctx, cancel := context.WithTimeout(a.s.ctx, time.Minute)
	defer cancel()
	one := func(c cid.Cid) {
		if err := a.r.Provide(ctx, c, true); err != nil {
			a.s.log.Debug("announce failed", "cid", c, "err", err)
		}
	}
	if !a.s.cfg.ProvideAll {
		one(c)
		return
	}
	a.s.store.walkLocal(ctx, c, one)
}
