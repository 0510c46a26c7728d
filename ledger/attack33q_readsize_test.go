package ledger_test

import (
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/nubecloud/nube/nubetest"
)

// dirSize is the bytes of the files under dir.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// TestStrangerFillsLogWithReads: a read is now a log entry that carries
// the question as the stranger sent it, and nothing bounds the question:
// accountReq's nonce is any bytes. A bare libp2p host, no key of the
// ledger's, asks one member about an account with a nonce of 900 KB, 16
// times (well within one peer's door: 500 a second); every member writes
// each 900 KB entry to its log, synced, and keeps it until a snapshot
// (raft keeps 10240 entries behind one: some 9 GB per member, from one
// stranger at a few hundred calls a second). Before, a read cost one
// empty entry.
func TestStrangerFillsLogWithReads(t *testing.T) {
	if testing.Short() {
		t.Skip("short: writes 40 MB")
	}
	c := ledgerCluster(t, 3, nubetest.WithDataDirs())
	var dirs []string
	for i := range 3 {
		if dirs = append(dirs, c.Node(i).Config().DataDir); dirs[i] == "" {
			t.Fatalf("node %d has no data dir", i)
		}
	}
	ctx := nubetest.Context(t, 2*time.Minute)
	var before int64
	w0 := writes(t, ctx, c, 1)
	for _, d := range dirs {
		before += dirSize(t, d)
	}
	_, ep := bare(t, ctx, c.Node(0))
	const calls, size = 16, 900 << 10
	answered := 0
	for range calls {
		_, err := impAccount.At(ep, c.Node(0).ID()).Call(ctx, map[int]any{1: []byte(c.Node(0).UserID()), 2: make([]byte, size)})
		if err == nil {
			answered++
		}
	}
	w1 := writes(t, ctx, c, 1)
	var after int64
	for _, d := range dirs {
		after += dirSize(t, d)
	}
	t.Logf("a stranger's %d reads of %d KB: %d answered, %d writes on a follower, the members' data dirs grew by %d MB",
		calls, size>>10, answered, w1-w0, (after-before)>>20)
	if answered > 0 || after-before > 8<<20 {
		t.Fatalf("a stranger with no key put %d entries of %d KB in the ledger's log (%d writes on a follower): "+
			"the members' data dirs grew by %d MB", answered, size>>10, w1-w0, (after-before)>>20)
	}
}
