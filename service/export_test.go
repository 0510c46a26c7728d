package service

import (
	"context"

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
