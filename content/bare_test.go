package content_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/hosttest"
)

// TestOnBareHosts runs the content layer on two bare libp2p hosts with
// in-memory stores, with no node around it: one adds a file, the other
// fetches it from the first and pins it.
func TestOnBareHosts(t *testing.T) {
	hs := hosttest.Hosts(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var svcs []*content.Service
	for _, h := range hs {
		st, err := content.OpenStore("")
		if err != nil {
			t.Fatal(err)
		}
		s, err := content.New(ctx, content.Config{Host: h, Store: st})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(); st.Close() })
		svcs = append(svcs, s)
	}
	data := randomBytes(3*content.ChunkSize+5, 9)
	c, err := svcs[0].Add(ctx, bytes.NewReader(data), content.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := svcs[1].Get(ctx, c.String())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fetched %d of %d bytes: %v", len(got), len(data), err)
	}
	if err := svcs[1].Pin(ctx, c, "bare", nil); err != nil {
		t.Fatal(err)
	}
}
