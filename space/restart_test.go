package space_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
)

// logBuffer collects a node's log lines; nodes log from many goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestOwnerStartsWithAnOversizedHead: the home's stored head of one space
// is over MaxHeadSize, as a node before the head check left it after
// thousands of grants. The node starts anyway and warns; its other space
// works for the owner and a grantee on another node; the oversized one
// reads on the home and refuses writes, until a revocation brings the
// head back under the limit.
func TestOwnerStartsWithAnOversizedHead(t *testing.T) {
	var dir string
	var logs logBuffer
	c := nubetest.Cluster(t, 2, nubetest.WithDataDirs(), nubetest.WithConfig(func(i int, cfg *nube.Config) {
		if i == 0 {
			dir = cfg.DataDir
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
	}))
	ctx := nubetest.Context(t, time.Minute)
	a, b := c.Node(0), c.Node(1)
	big, err := a.Spaces().Create(ctx, "big", space.Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := big.PutBytes(ctx, "k", []byte("still readable on the home")); err != nil {
		t.Fatal(err)
	}
	g, err := big.Grant(ctx, b.UserID(), space.Read, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := a.Spaces().Create(ctx, "other", space.Policy{On: []peer.ID{b.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Grant(ctx, b.UserID(), space.Read, time.Time{}); err != nil {
		t.Fatal(err)
	}

	c.Kill(0)
	key, _, err := identity.LoadOrCreate(filepath.Join(dir, nube.UserKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	space.InflateStoredHead(t, filepath.Join(dir, nube.SpacesDir), key, big.ID(), space.MaxHeadSize+4096)
	// And a space whose file is junk: it cannot be served at all.
	junk := filepath.Join(dir, nube.SpacesDir, "owned", a.UserID().String()+"_junk.cbor")
	if err := os.WriteFile(junk, []byte("not a space"), 0o600); err != nil {
		t.Fatal(err)
	}

	a, err = c.Restart(ctx, 0)
	if err != nil {
		t.Fatalf("the owner's node does not start with an oversized head: %v", err)
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, big.ID()) {
		t.Fatalf("no warning names the oversized space; the log:\n%s", l)
	}
	// The junk space is refused with a reason, and its name is not free.
	js, _ := a.Spaces().Open(ctx, "", "junk")
	if _, err := js.GetBytes(ctx, "k"); !errors.Is(err, space.ErrBadHead) {
		t.Fatalf("a read of a space that did not load: %v, want ErrBadHead", err)
	}
	if _, err := a.Spaces().Create(ctx, "junk", space.Policy{Local: true}); !errors.Is(err, space.ErrExists) {
		t.Fatalf("creating over a space that did not load: %v, want ErrExists", err)
	}
	if err := c.WaitConnected(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	// The other space works: the owner writes, the grantee reads.
	other, _ = a.Spaces().Open(ctx, "", "other")
	if err := other.PutBytes(ctx, "after", []byte("written after the restart")); err != nil {
		t.Fatalf("write to the other space: %v", err)
	}
	bo, _ := b.Spaces().Open(ctx, a.UserID(), "other")
	if got, err := bo.GetBytes(ctx, "after"); err != nil || string(got) != "written after the restart" {
		t.Fatalf("the grantee reads the other space: %q, %v", got, err)
	}
	// The oversized one is read-only on its home.
	big, _ = a.Spaces().Open(ctx, "", "big")
	if got, err := big.GetBytes(ctx, "k"); err != nil || string(got) != "still readable on the home" {
		t.Fatalf("the owner reads the oversized space: %q, %v", got, err)
	}
	if err := big.PutBytes(ctx, "k2", []byte("x")); !errors.Is(err, space.ErrHeadTooLarge) {
		t.Fatalf("a write to the oversized space: %v, want ErrHeadTooLarge", err)
	}
	// Other nodes are told why, not handed a head they would drop.
	bb, _ := b.Spaces().Open(ctx, a.UserID(), "big")
	if _, err := bb.GetBytes(ctx, "k"); err == nil {
		t.Fatal("a reader elsewhere read the oversized space")
	}
	// Revoking rewraps the keys for the grants there are: the fake
	// readers go, the head fits, and writes work again.
	if err := big.Revoke(ctx, g.ID()); err != nil {
		t.Fatalf("revoke on the oversized space: %v", err)
	}
	if err := big.PutBytes(ctx, "k2", []byte("after the revocation")); err != nil {
		t.Fatalf("a write once the head fits again: %v", err)
	}
	if got, err := big.GetBytes(ctx, "k2"); err != nil || string(got) != "after the revocation" {
		t.Fatalf("read back: %q, %v", got, err)
	}
}
