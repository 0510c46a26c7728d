package remote_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/remote"
)

// TestOnBareHosts runs the remote layer on two bare libp2p hosts, with no
// node around it: a plain call, a streaming call, and a function served
// by one endpoint alone.
func TestOnBareHosts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs, eps := bareEndpoints(t, ctx, 2)
	counts, err := exampleWordCount.At(eps[0], hs[1].ID()).Call(ctx, "a b a")
	if err != nil || counts["a"] != 2 {
		t.Fatalf("call on a bare host: %v, %v", counts, err)
	}
	n := 0
	for _, err := range exampleLines.At(eps[1], hs[0].ID()).Call(ctx, 5) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 5 {
		t.Fatalf("stream on a bare host: %d results", n)
	}
	greet := remote.Declare[string, string]("test.bare.greet")
	stop := remote.Handle(eps[1], greet, func(ctx context.Context, s string) (string, error) { return "hi " + s, nil })
	defer stop()
	if got, err := greet.At(eps[0], hs[1].ID()).Call(ctx, "a"); err != nil || got != "hi a" {
		t.Fatalf("handled function on a bare host: %q, %v", got, err)
	}
}

// errTaken is a layer's sentinel of the conflict kind, as a layer makes
// them.
var errTaken = errcode.New(errcode.Conflict, "name taken")

var claim = remote.Func("test.bare.claim", func(ctx context.Context, name string) (string, error) {
	switch strings.TrimSpace(name) {
	case "taken":
		return "", fmt.Errorf("claim %q: %w", name, errTaken)
	case "plain":
		return "", errors.New("no kind at all")
	}
	return name, nil
})

// TestErrorKindsCrossNodes: a callee's error of a known kind matches its
// sentinel on the caller, over a lane and over a stream of its own; an
// error of no kind matches none.
func TestErrorKindsCrossNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs, eps := bareEndpoints(t, ctx, 2)
	_, err := claim.At(eps[0], hs[1].ID()).Call(ctx, "taken")
	var re *remote.Error
	if !errors.Is(err, errTaken) || !errors.Is(err, errcode.ErrConflict) || !errors.Is(err, remote.ErrCallee) ||
		!errors.As(err, &re) || re.Kind != errcode.Conflict {
		t.Fatalf("a conflict from the callee arrived as %v", err)
	}
	if errors.Is(err, errcode.ErrBusy) || errcode.Of(err) != errcode.Conflict {
		t.Fatalf("kind of %v: %s", err, errcode.Of(err))
	}
	_, err = claim.At(eps[0], hs[1].ID()).Call(ctx, "plain")
	if !errors.Is(err, remote.ErrCallee) || errors.Is(err, errTaken) || errcode.Of(err) != errcode.Internal {
		t.Fatalf("an error of no kind arrived as %v (%s)", err, errcode.Of(err))
	}
	// The same over a stream of its own: an input too big for a lane.
	_, err = claim.At(eps[0], hs[1].ID()).Call(ctx, "taken"+strings.Repeat(" ", 100<<10))
	if !errors.Is(err, errTaken) {
		t.Fatalf("a conflict over a stream arrived as %v", err)
	}
}

// bareEndpoints starts n bare hosts, each with a remote endpoint.
func bareEndpoints(t *testing.T, ctx context.Context, n int) ([]host.Host, []*remote.Endpoint) {
	t.Helper()
	hs := hosttest.Hosts(t, n)
	var eps []*remote.Endpoint
	for _, h := range hs {
		e, err := remote.New(ctx, remote.Config{Host: h})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		eps = append(eps, e)
	}
	return hs, eps
}
