package service

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
)

// RunRaw sends descriptor bytes as they are to p's run function, as a
// hostile or broken caller could.
func (m *Manager) RunRaw(ctx context.Context, p peer.ID, descriptor, in []byte) error {
	reply, err := runFn.At(m.cfg.Remote, p).Call(ctx, runRequest{Descriptor: descriptor, Input: in})
	if err != nil {
		return err
	}
	if reply.Kind != "" {
		return &RunError{Peer: p, Service: "raw", Kind: reply.Kind, Message: reply.Message}
	}
	return nil
}

// Envelope splits a descriptor's bytes into its body and signature, and
// Seal joins them back, so tests can alter a signed descriptor.
func Envelope(data []byte) (body, sig []byte, err error) {
	var e identity.Envelope
	err = wire.Unmarshal(data, &e)
	return e.Body, e.Sig, err
}

func Seal(body, sig []byte) []byte {
	b, _ := wire.Marshal(identity.Envelope{Body: body, Sig: sig})
	return b
}

// SetModule rewrites the module CID inside a descriptor body.
func SetModule(b []byte, module []byte) []byte {
	var x body
	if err := wire.Unmarshal(b, &x); err != nil {
		panic(err)
	}
	x.Module = module
	out, _ := wire.Marshal(x)
	return out
}

// manager is a node's service layer as the facade hands it out.
type manager interface{ Service(string) *Pipeline }

func mgr(s manager) *Manager { return s.Service("x").m }

// Tamper makes the node behind s change the output of every run it does
// from now on: a liar, for the tests of Verify.
func TamperWith(s manager, f func([]byte) []byte) {
	m := mgr(s)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tamper = f
}

// SignCapability signs, as the node behind s, the capability of a run of
// d on runner with the rights given, as a call would.
func SignCapability(ctx context.Context, s manager, runner peer.ID, d *Descriptor, rights ...Allow) ([]byte, error) {
	p := mgr(s).Service(d.Name).Allow(rights...)
	return p.capability(ctx, runner, d, time.Minute)
}

// RunWith runs d on p from the node behind s with the capability given,
// as a caller that kept another's could.
func RunWith(ctx context.Context, s manager, p peer.ID, d *Descriptor, capability, in []byte) ([]byte, error) {
	m := mgr(s)
	reply, err := runFn.At(m.cfg.Remote, p).Call(ctx, runRequest{Descriptor: d.raw, Input: in, Cert: &m.cert, Cap: capability})
	if err != nil {
		return nil, err
	}
	if reply.Kind != "" {
		return nil, &RunError{Peer: p, Service: d.Label(), Kind: reply.Kind, Message: reply.Message}
	}
	return reply.Output, nil
}
