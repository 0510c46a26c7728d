package names

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipns"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/routing"
)

// checkRecord returns the record raw, stored under the routing key key,
// if it is one boxo's validator accepts (a record of key's name, signed
// by its key, still valid), at most ipns.MaxRecordSize bytes: the one
// check every record from the network or a caller goes through.
func checkRecord(key string, raw []byte) (*ipns.Record, error) {
	if len(raw) > ipns.MaxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadRecord, len(raw), ipns.MaxRecordSize)
	}
	if err := (ipns.Validator{}).Validate(key, raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	rec, err := ipns.UnmarshalRecord(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	return rec, nil
}

// better reports whether record a should replace b (b nil: yes).
func better(key string, a, b []byte) bool {
	if b == nil {
		return true
	}
	i, err := (ipns.Validator{}).Select(key, [][]byte{b, a})
	return err == nil && i == 1
}

// stores is the routing the name system reads and writes: nube's DHT and,
// if the node has one, the public IPFS DHT. A read asks both at once and
// streams each record better than the last (checked here whatever the
// router did); a write goes to nube's DHT before it returns, and to the
// public one in the background.
type stores struct {
	m      *Manager
	own    routing.ValueStore
	public routing.ValueStore // nil: none
}

func (s stores) routers() []routing.ValueStore {
	if s.public == nil {
		return []routing.ValueStore{s.own}
	}
	return []routing.ValueStore{s.own, s.public}
}

// PutValue stores a record that checkRecord accepts.
func (s stores) PutValue(ctx context.Context, key string, raw []byte, opts ...routing.Option) error {
	if _, err := checkRecord(key, raw); err != nil {
		return err
	}
	if s.public != nil {
		s.m.background(func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, s.m.cfg.PublicTimeout)
			defer cancel()
			if err := s.public.PutValue(ctx, key, raw, opts...); err != nil {
				s.m.log.Debug("store in the IPFS DHT failed; the next republish tries again", "err", err)
			}
		})
	}
	if err := s.own.PutValue(ctx, key, raw, opts...); err != nil {
		if errors.Is(err, kb.ErrLookupFailure) {
			// The DHT kept it (it stores before it looks for peers), and
			// answers for it; the republisher stores it with peers soon.
			s.m.log.Info("no DHT peers yet: the record is kept on this node, and stored in the DHT once it has peers")
			s.m.lonely.Store(true)
			return nil
		}
		return fmt.Errorf("store in nube's DHT: %w", err)
	}
	return nil
}

// GetValue returns the best record any router has.
func (s stores) GetValue(ctx context.Context, key string, opts ...routing.Option) ([]byte, error) {
	ch, err := s.SearchValue(ctx, key, opts...)
	if err != nil {
		return nil, err
	}
	var best []byte
	for v := range ch {
		best = v
	}
	if best == nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, routing.ErrNotFound
	}
	return best, nil
}

// SearchValue streams better and better records from every router; the
// channel closes when all are done or ctx ends. Once nube's DHT has
// answered, the public one has Config.PublicGrace more to better it.
func (s stores) SearchValue(ctx context.Context, key string, opts ...routing.Option) (<-chan []byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	type found struct {
		v    []byte
		own  bool
		done bool
	}
	in := make(chan found)
	var wg sync.WaitGroup
	for i, r := range s.routers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send := func(f found) bool {
				select {
				case in <- f:
					return true
				case <-ctx.Done():
					return false
				}
			}
			defer send(found{own: i == 0, done: true})
			ch, err := r.SearchValue(ctx, key, opts...)
			if err != nil {
				return
			}
			for v := range ch {
				if _, err := checkRecord(key, v); err != nil {
					continue
				}
				if !send(found{v: v, own: i == 0}) {
					return
				}
			}
		}()
	}
	out := make(chan []byte, 1)
	go func() {
		defer close(out)
		defer cancel()
		defer func() {
			cancel() // the askers' sends give up, so they end
			wg.Wait()
		}()
		var best []byte
		left := len(s.routers())
		var grace <-chan time.Time
		for left > 0 {
			select {
			case f := <-in:
				if f.done {
					left--
					if f.own && left > 0 && best != nil {
						t := time.NewTimer(s.m.cfg.PublicGrace)
						defer t.Stop()
						grace = t.C
					}
					continue
				}
				if !better(key, f.v, best) {
					continue
				}
				best = f.v
				select {
				case out <- f.v:
				case <-ctx.Done():
					return
				}
			case <-grace:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

var _ routing.ValueStore = stores{}

// isNotFound reports an error by which a router says it has no record.
func isNotFound(err error) bool {
	return errors.Is(err, routing.ErrNotFound)
}
