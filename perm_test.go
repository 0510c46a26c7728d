//go:build !windows

package nube_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/nubetest"
)

// TestUnsafePermissions starts nodes on data dirs others may write, or
// with a key others may read: Start refuses each with ErrUnsafePermissions
// and the chmod that fixes it, and starts once that is done. Not on
// Windows (by its build constraint), which has no Unix mode bits.
func TestUnsafePermissions(t *testing.T) {
	t.Parallel()
	ctx := nubetest.Context(t, 30*time.Second)
	cfg := nubetest.TestConfig()
	cfg.DataDir = t.TempDir()
	os.Chmod(cfg.DataDir, 0o777)
	if _, err := nube.Start(ctx, cfg); !errors.Is(err, nube.ErrUnsafePermissions) || !strings.Contains(err.Error(), "chmod go-w "+cfg.DataDir) {
		t.Fatalf("Start on a 0777 data dir = %v", err)
	}
	os.Chmod(cfg.DataDir, 0o700)
	n, err := nube.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	key := filepath.Join(cfg.DataDir, nube.UserKeyFile)
	os.Chmod(key, 0o640)
	if _, err := nube.Start(ctx, cfg); !errors.Is(err, nube.ErrUnsafePermissions) || !strings.Contains(err.Error(), "chmod 600 "+key) {
		t.Fatalf("Start with a group-readable user key = %v", err)
	}
}
