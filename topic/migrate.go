package topic

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/space"
)

// migrate moves a durable topic to the holders policy names while
// publishers and subscribers keep going; a live topic's space simply
// migrates.
func (t *Topic) migrate(ctx context.Context, policy space.Policy, progress func(string)) error {
	if progress == nil {
		progress = func(string) {}
	}
	cfg, err := t.config(ctx)
	if err != nil {
		return err
	}
	var old []peer.ID
	if cfg.Retain.Durable() {
		if old, err = t.logHolders(ctx); err != nil {
			return err
		}
	}
	if cfg.Retain.Durable() {
		if err := keepsOne(old, policy, t.m.cfg.Host.ID()); err != nil {
			return fmt.Errorf("topic %s: %w", t.ID(), err)
		}
	}
	if err := t.sp.Migrate(ctx, policy, func(p space.MigrateProgress) { progress(fmt.Sprintf("space: %+v", p)) }); err != nil {
		return fmt.Errorf("topic %s: migrate its space: %w", t.ID(), err)
	}
	if !cfg.Retain.Durable() {
		return nil
	}
	d := t.m.durable
	nw, err := t.logHolders(ctx)
	if err != nil {
		return err
	}
	if slices.Equal(old, nw) {
		return nil
	}
	progress(fmt.Sprintf("log: from %v to %v", old, nw))
	var hs []string
	for _, p := range nw {
		hs = append(hs, p.String())
	}
	// One old holder that stays (else any old one) moves the group: it
	// adds the new holders, waits for them to catch up, removes the old.
	order := slices.Clone(old)
	slices.SortStableFunc(order, func(a, b peer.ID) int {
		ia, ib := slices.Contains(nw, a), slices.Contains(nw, b)
		switch {
		case ia && !ib:
			return -1
		case ib && !ia:
			return 1
		}
		return 0
	})
	for {
		var last error
		for _, p := range order {
			_, err = moveFn.At(d.m.cfg.Endpoint, p).Call(ctx, moveReq{Topic: t.ID(), Holders: hs})
			if err == nil {
				last = nil
				break
			}
			last = err
		}
		if last == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s: move its log: %w (last: %v)", t.ID(), ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
	d.mu.Lock()
	delete(d.routes, t.ID())
	d.mu.Unlock()
	// The old holders let go of their copies.
	var gone []peer.ID
	for _, p := range old {
		if !slices.Contains(nw, p) {
			gone = append(gone, p)
		}
	}
	for p, r := range dropFn.OnAll(ctx, d.m.cfg.Endpoint, gone, dropReq{Topic: t.ID()}) {
		if r.Err != nil {
			progress(fmt.Sprintf("log: %s did not drop its copy: %v", p, r.Err))
		}
	}
	progress("log: moved")
	return nil
}

// serveMove moves the group of a topic's log to req.Holders: it runs on a
// member, adds each new holder (which joins and catches up), then removes
// the members that are not holders, itself last.
func (d *durable) serveMove(ctx context.Context, req moveReq) (moveReply, error) {
	l, ok := d.local(ctx, req.Topic, nil)
	if !ok {
		return moveReply{}, fmt.Errorf("%w: %s holds no log of %s", ErrUnavailable, d.m.cfg.Host.ID(), req.Topic)
	}
	owner, name, err := SplitID(req.Topic)
	if err != nil {
		return moveReply{}, err
	}
	sp, err := d.m.cfg.Spaces.Open(owner, SpaceName(name))
	if err != nil {
		return moveReply{}, err
	}
	t := &Topic{m: d.m, owner: owner, name: name, sp: sp}
	// The space's holders are the truth: a caller cannot move the log
	// anywhere else.
	want, err := t.logHolders(ctx)
	if err != nil {
		return moveReply{}, err
	}
	st, err := l.g.Status(ctx)
	if err != nil {
		return moveReply{}, err
	}
	var members []peer.ID
	for _, m := range st.Members {
		members = append(members, m.ID)
	}
	self := d.m.cfg.Host.ID()
	for _, p := range want {
		if slices.Contains(members, p) {
			continue
		}
		if err := l.g.AddMember(ctx, p); err != nil {
			return moveReply{}, err
		}
		if _, err := wakeFn.At(d.m.cfg.Endpoint, p).Call(ctx, wakeReq{Topic: req.Topic, Join: self.String(), Config: l.config()}); err != nil {
			return moveReply{}, fmt.Errorf("new holder %s: %w", p, err)
		}
	}
	// Wait until every new holder applied what the group committed.
	if err := l.g.Sync(ctx); err != nil {
		return moveReply{}, err
	}
	target := l.log.state().Index
	for _, p := range want {
		if slices.Contains(members, p) {
			continue
		}
		for {
			rep, err := wakeFn.At(d.m.cfg.Endpoint, p).Call(ctx, wakeReq{Topic: req.Topic, Join: self.String(), Config: l.config()})
			if err == nil && rep.Applied >= target {
				break
			}
			select {
			case <-ctx.Done():
				return moveReply{}, fmt.Errorf("new holder %s never caught up: %w", p, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	var removed []string
	leaving := false
	for _, p := range members {
		if slices.Contains(want, p) {
			continue
		}
		if p == self {
			leaving = true
			continue
		}
		if err := l.g.RemoveMember(ctx, p); err != nil {
			return moveReply{Removed: removed}, err
		}
		removed = append(removed, p.String())
	}
	if leaving {
		if err := l.g.RemoveMember(ctx, self); err != nil {
			return moveReply{Removed: removed}, err
		}
		removed = append(removed, self.String())
	}
	return moveReply{Removed: removed}, nil
}

// keepsOne refuses a migration of a durable topic whose new holders
// would share none with the old: the log moves through a holder that
// stays (a new holder joins the log's group only through a holder the
// space names, so that a stranger cannot lead it), and none would. The
// new set is known when the policy is Local (the home alone) or names
// every holder; a policy of replicas picked by the home keeps what holders
// it can. Migrate in two steps, through a set that keeps one.
func keepsOne(old []peer.ID, policy space.Policy, home peer.ID) error {
	var next []peer.ID
	switch {
	case policy.Local:
		next = []peer.ID{home}
	case len(policy.On) > 0 && policy.Replicas <= len(policy.On):
		next = policy.On
	default:
		return nil
	}
	for _, p := range next {
		if slices.Contains(old, p) {
			return nil
		}
	}
	return fmt.Errorf("%w: the new holders %v keep none of the log's %v: a durable topic's log moves through a holder that stays, so migrate through a placement that keeps one of them first", space.ErrBadPolicy, next, old)
}
