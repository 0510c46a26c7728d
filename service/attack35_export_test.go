package service

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/remote"
)

// LieAfterProof makes the node behind s a liar of another kind than
// TamperWith's: it runs honestly, signs its proof of the honest output,
// then answers f(reply), so the reply's output, proof or both are what f
// makes them.
func LieAfterProof(s manager, f func(out, proof []byte) ([]byte, []byte)) {
	m := mgr(s)
	m.unserve[1]() // stop serving runs honestly
	m.unserve[1] = remote.Handle(m.cfg.Remote, runFn, func(ctx context.Context, req runRequest) (runReply, error) {
		r := m.serveRun(ctx, remote.Caller(ctx), req)
		if r.Kind == "" {
			r.Output, r.Proof = f(r.Output, r.Proof)
		}
		return r, nil
	})
}

// SignCapabilitySwapped signs, as the node behind s, the capability of a
// run of d on runner whose one right is right, but whose loan is the one
// a right of loanOf would carry: a capability that names one space and
// carries the loan of another.
func SignCapabilitySwapped(ctx context.Context, s manager, runner peer.ID, d *Descriptor, right, loanOf Allow) ([]byte, error) {
	m := mgr(s)
	until := time.Now().Add(time.Minute).Truncate(time.Second)
	loan, err := m.cfg.Spaces.Lend(ctx, loanOf.Space, runner, loanOf.Access == Write, loanOf.Prefix, d.Module.String(), until)
	if err != nil {
		return nil, err
	}
	c := &Capability{Runner: runner, Module: d.Module, Allows: []Allow{right}, Depth: DefaultDepth, Until: until, loans: [][]byte{loan}}
	return c.sign(m.cfg.UserKey)
}
