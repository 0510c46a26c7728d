package service_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/service"
)

// TestOnBareHosts runs the service layer on two bare libp2p hosts, each
// with just the content and remote layers it uses, with no node around
// them: a service published on one is found and run from the other.
func TestOnBareHosts(t *testing.T) {
	hs := hosttest.Hosts(t, 2)
	// One host fetches the module from the other while both run it: under
	// the race detector, in wazero's interpreter, beside other packages'
	// tests on a 2-core CI machine, that once took over a minute (alone:
	// 3 s). The bound is for a hang, not for speed.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var ms []*service.Manager
	for _, h := range hs {
		st, err := content.OpenStore("")
		if err != nil {
			t.Fatal(err)
		}
		cs, err := content.New(ctx, content.Config{Host: h, Store: st})
		if err != nil {
			t.Fatal(err)
		}
		ep, err := remote.New(ctx, remote.Config{Host: h})
		if err != nil {
			t.Fatal(err)
		}
		_, key, _ := ed25519.GenerateKey(rand.Reader)
		m, err := service.New(ctx, service.Config{
			Host: h, Content: cs, Remote: ep, UserKey: key,
			Interpreter: nubetest.TestConfig().ComputeInterpreter,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close(); ep.Close(); cs.Close(); st.Close() })
		ms = append(ms, m)
	}
	if _, err := ms[0].Publish(ctx, bytes.NewReader(wasmtest.Module(t, "upper")), service.PublishOptions{Name: "upper"}); err != nil {
		t.Fatal(err)
	}
	for p, r := range ms[1].Service("upper").On(hs[0].ID(), hs[1].ID()).CallN(ctx, 2, []byte("bare")) {
		if r.Err != nil || string(r.Output) != "BARE" {
			t.Fatalf("run on %s: %q, %v", p, r.Output, r.Err)
		}
	}
}
