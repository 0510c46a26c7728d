package remote_test

import (
	"context"
	"testing"
	"time"

	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/remote"
)

// TestOnBareHosts runs the remote layer on two bare libp2p hosts, with no
// node around it: a plain call, a streaming call, and a function served
// by one endpoint alone.
func TestOnBareHosts(t *testing.T) {
	hs := hosttest.Hosts(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var eps []*remote.Endpoint
	for _, h := range hs {
		e, err := remote.New(ctx, remote.Config{Host: h})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		eps = append(eps, e)
	}
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
