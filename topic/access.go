package topic

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/space"
)

// Who may read a durable topic from its holders. A holder serves reads,
// consumer fetches, acks and info only to a caller whose user has the
// Subscribe right on the topic now: the caller sends its node's cert (the
// user's signature on the node's ID, which the holder checks against the
// peer the call came from) and its user's grant chain on the topic's
// space, which the holder checks with space.CheckChain against the
// revocations of the newest head it knows (the same verdict cache as a
// publish's). Publishes are checked message by message (authorise).

// chainTTL is how long a reader reuses its own chain before it asks the
// space again; a holder checks it at every call, so a revoked one fails
// there at once.
const chainTTL = 10 * time.Second

// callers keeps, per topic, the chain this node's user presents, and the
// callers' certs a holder has checked.
type callers struct {
	mu     sync.Mutex
	chains map[string]cachedChain
	certs  map[string]struct{} // node, user and signature of a cert checked
}

type cachedChain struct {
	chain [][]byte
	at    time.Time
}

// maxCerts bounds the certs a holder remembers as checked.
const maxCerts = 4096

// who is what this node sends a holder to read t: its cert and its
// user's chain to subscribe.
func (d *durable) who(ctx context.Context, t *Topic) (caller, error) {
	c := caller{Cert: d.m.cfg.Cert}
	d.callers.mu.Lock()
	cc, ok := d.callers.chains[t.ID()]
	d.callers.mu.Unlock()
	if ok && time.Since(cc.at) < chainTTL {
		c.Chain = cc.chain
		return c, nil
	}
	chain, err := t.sp.Chain(ctx, space.Read)
	if err != nil {
		return c, fmt.Errorf("topic %s: %w", t.ID(), mapSpaceErr(err))
	}
	d.callers.mu.Lock()
	if d.callers.chains == nil || len(d.callers.chains) >= maxTopicsAuth {
		d.callers.chains = map[string]cachedChain{}
	}
	d.callers.chains[t.ID()] = cachedChain{chain: chain, at: time.Now()}
	d.callers.mu.Unlock()
	c.Chain = chain
	return c, nil
}

// forgetChain drops this node's chain of t (a holder refused it).
func (d *durable) forgetChain(id string) {
	d.callers.mu.Lock()
	delete(d.callers.chains, id)
	d.callers.mu.Unlock()
}

// allow checks, on a holder, that the caller of a read, fetch, ack or
// info call may subscribe to topic id now.
func (d *durable) allow(ctx context.Context, id string, who caller) error {
	from := remote.Caller(ctx)
	user, err := d.callerUser(from, who)
	if err != nil {
		return err
	}
	return d.m.live.auth.allowRead(ctx, id, user, who.Chain)
}

// callerUser is the user of node from, as the cert it sent says (this
// node's own user for a call from itself).
func (d *durable) callerUser(from peer.ID, who caller) (peer.ID, error) {
	if from == "" || from == d.m.cfg.Host.ID() {
		return d.m.live.user, nil
	}
	if who.Cert == nil {
		return "", fmt.Errorf("%w: node %s sent no cert", ErrNotAuthorised, from)
	}
	key := string(from) + "\x00" + string(who.Cert.User) + "\x00" + string(who.Cert.Sig)
	d.callers.mu.Lock()
	_, ok := d.callers.certs[key]
	d.callers.mu.Unlock()
	if ok {
		return who.Cert.User, nil
	}
	if err := who.Cert.Check(from); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotAuthorised, err)
	}
	d.callers.mu.Lock()
	if d.callers.certs == nil || len(d.callers.certs) >= maxCerts {
		d.callers.certs = map[string]struct{}{}
	}
	d.callers.certs[key] = struct{}{}
	d.callers.mu.Unlock()
	return who.Cert.User, nil
}

// allowRead checks that chain gives user the Subscribe right on topic id
// now, none of its links revoked by the newest head this node knows; the
// verdict is kept like a publisher's (see authorise).
func (a *auth) allowRead(ctx context.Context, id string, user peer.ID, chain [][]byte) error {
	ta, err := a.of(id)
	if err != nil {
		return err
	}
	st, err := a.state(ctx, ta)
	if errors.Is(err, errUnknown) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err != nil {
		return err
	}
	if st.Deleted {
		return fmt.Errorf("%w: topic %s was deleted", ErrNotFound, id)
	}
	key := verdictKeyOf('r', user, chain)
	now := time.Now()
	ta.mu.Lock()
	v, ok := ta.verdicts[key]
	ta.mu.Unlock()
	if ok && v.seq == st.Seq && (v.until.IsZero() || now.Before(v.until)) {
		return v.err
	}
	owner, name, _ := SplitID(id) // of checked it
	until, err := space.CheckChain(owner.String()+"/"+SpaceName(name), chain, user, space.Read, now, st.Revoked)
	if err != nil {
		err = fmt.Errorf("%w: %s may not subscribe to %s: %w", ErrNotAuthorised, user, id, err)
	}
	ta.mu.Lock()
	if len(ta.verdicts) >= maxVerdicts {
		clear(ta.verdicts)
	}
	ta.verdicts[key] = verdict{err: err, seq: st.Seq, until: until}
	ta.mu.Unlock()
	return err
}
