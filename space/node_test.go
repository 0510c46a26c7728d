package space_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
)

// TestMigrationUnderLoad moves a space from B to C while a reader on D
// reads in a loop and the owner on A writes: no read fails, no write is
// lost, and B keeps nothing of the space.
func TestMigrationUnderLoad(t *testing.T) {
	c := nubetest.Cluster(t, 4)
	ctx := nubetest.Context(t, 2*time.Minute)
	a, b, cc, d := c.Node(0), c.Node(1), c.Node(2), c.Node(3)
	sp, err := a.Spaces().Create(ctx, "photos", space.Policy{On: []peer.ID{b.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Grant(ctx, d.UserID(), space.Read, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// Some bulk so the copy takes a while.
	bulk := bytes.Repeat([]byte{7}, 3<<20)
	if err := sp.PutBytes(ctx, "bulk", bulk); err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "w/0", []byte("0")); err != nil {
		t.Fatal(err)
	}
	var written atomic.Int64 // keys w/0 .. w/(written-1) are acked
	written.Store(1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writeErr, readErr error
	var reads atomic.Int64
	wg.Go(func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := sp.PutBytes(ctx, fmt.Sprintf("w/%d", i), []byte(fmt.Sprint(i))); err != nil {
				writeErr = err
				return
			}
			written.Store(int64(i + 1))
		}
	})
	ds, err := d.Spaces().Open(ctx, a.UserID(), "photos")
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := int64(i) % written.Load()
			got, err := ds.GetBytes(ctx, fmt.Sprintf("w/%d", k))
			if err != nil {
				readErr = fmt.Errorf("read w/%d: %w", k, err)
				return
			}
			if string(got) != fmt.Sprint(k) {
				readErr = fmt.Errorf("read w/%d: %q", k, got)
				return
			}
			reads.Add(1)
		}
	})
	if err := sp.Migrate(ctx, space.Policy{On: []peer.ID{cc.ID()}}, nil); err != nil {
		t.Fatal(err)
	}
	// Let the reader go on after the switch until it has read some more.
	after := reads.Load()
	for reads.Load() < after+20 && readErr == nil && writeErr == nil {
		if err := sp.PutBytes(ctx, "tick", nil); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if writeErr != nil || readErr != nil {
		t.Fatalf("during migration: write %v, read %v", writeErr, readErr)
	}
	n := written.Load()
	t.Logf("%d reads, %d writes during the migration", reads.Load(), n)
	for i := range n {
		got, err := ds.GetBytes(ctx, fmt.Sprintf("w/%d", i))
		if err != nil || string(got) != fmt.Sprint(i) {
			t.Fatalf("write w/%d lost: %q, %v", i, got, err)
		}
	}
	info, err := sp.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Holders) != 1 || info.Holders[0].Peer != cc.ID() {
		t.Fatalf("holders after migration: %+v", info.Holders)
	}
	// B let go: no pin, and after GC none of the space's blocks.
	hs, err := b.Spaces().Holdings(ctx)
	if err != nil || len(hs) != 0 {
		t.Fatalf("B still holds %+v (%v)", hs, err)
	}
	if _, err := b.Content().GC(ctx); err != nil {
		t.Fatal(err)
	}
	root, err := cid.Decode(info.Root)
	if err != nil {
		t.Fatal(err)
	}
	if has, _ := b.Content().Has(ctx, root); has {
		t.Fatal("B still has the space's root after GC")
	}
	hs, err = cc.Spaces().Holdings(ctx)
	if err != nil || len(hs) != 1 || hs[0].Root != info.Root {
		t.Fatalf("C holds %+v (%v), want root %s", hs, err, info.Root)
	}
	got, err := ds.GetBytes(ctx, "bulk")
	if err != nil || !bytes.Equal(got, bulk) {
		t.Fatalf("bulk after migration: %d bytes, %v", len(got), err)
	}
}

// TestOwnerRestartKeepsSpaces restarts the home: its spaces, heads and
// grants are all there, and a grantee's write still works.
func TestOwnerRestartKeepsSpaces(t *testing.T) {
	c := nubetest.Cluster(t, 2, nubetest.WithDataDirs())
	ctx := nubetest.Context(t, time.Minute)
	a, b := c.Node(0), c.Node(1)
	sp, err := a.Spaces().Create(ctx, "kept", space.Policy{On: []peer.ID{b.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "k", []byte("survives a restart")); err != nil {
		t.Fatal(err)
	}
	g, err := sp.Grant(ctx, b.UserID(), space.Write, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	before, err := sp.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, err = c.Restart(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConnected(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	sp, err = a.Spaces().Open(ctx, "", "kept")
	if err != nil {
		t.Fatal(err)
	}
	after, err := sp.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Seq != before.Seq || after.Root != before.Root || len(after.Grants) != 1 || after.Grants[0].ID != g.ID() {
		t.Fatalf("after restart: %+v, before: %+v", after, before)
	}
	if got, err := sp.GetBytes(ctx, "k"); err != nil || string(got) != "survives a restart" {
		t.Fatalf("get after restart: %q, %v", got, err)
	}
	bs, err := b.Spaces().Open(ctx, a.UserID(), "kept")
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.PutBytes(ctx, "from-b", []byte("after the restart")); err != nil {
		t.Fatalf("grantee write after the owner's restart: %v", err)
	}
	if got, err := sp.GetBytes(ctx, "from-b"); err != nil || string(got) != "after the restart" {
		t.Fatalf("owner reads the grantee's write: %q, %v", got, err)
	}
}

// TestReaderFindsTheSpaceThroughTheDHT: the reader is given no address of
// the home, only a bootstrap peer that knows nothing of the space; it
// finds the home through the space's locator on the DHT.
func TestReaderFindsTheSpaceThroughTheDHT(t *testing.T) {
	c := nubetest.Cluster(t, 3, nubetest.BootstrapOnly())
	ctx := nubetest.Context(t, time.Minute)
	if err := c.WaitRoutingTables(ctx, 1); err != nil {
		t.Fatal(err)
	}
	home, reader := c.Node(1), c.Node(2)
	sp, err := home.Spaces().Create(ctx, "found", space.Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "k", []byte("found by its locator")); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Grant(ctx, reader.UserID(), space.Read, time.Time{}); err != nil {
		t.Fatal(err)
	}
	rs, err := reader.Spaces().Open(ctx, home.UserID(), "found")
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	var last error
	nubetest.Eventually(t, ctx, func() bool {
		got, last = rs.GetBytes(ctx, "k")
		return last == nil
	}, func() string { return fmt.Sprintf("the reader never found the space: %v", last) })
	if string(got) != "found by its locator" {
		t.Fatalf("read %q", got)
	}
}

// TestFailedMigrationKeepsPlacement migrates a space onto a node that is
// gone: the migration fails, and the space's policy and holders are what
// they were before (the policy used to be recorded before the copy).
func TestFailedMigrationKeepsPlacement(t *testing.T) {
	c := nubetest.Cluster(t, 3)
	ctx := nubetest.Context(t, time.Minute)
	a, b, gone := c.Node(0), c.Node(1), c.Node(2).ID()
	sp, err := a.Spaces().Create(ctx, "photos", space.Policy{On: []peer.ID{b.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	before, err := sp.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Kill(2)
	if err := sp.Migrate(ctx, space.Policy{On: []peer.ID{gone}}, nil); err == nil {
		t.Fatal("migrating onto a node that is gone succeeded")
	}
	after, err := sp.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(after.Policy) != fmt.Sprint(before.Policy) {
		t.Fatalf("policy after a failed migration: %+v, want %+v", after.Policy, before.Policy)
	}
	if len(after.Holders) != 1 || after.Holders[0].Peer != b.ID() || after.Holders[0].State != "ok" {
		t.Fatalf("holders after a failed migration: %+v, want only %s", after.Holders, b.ID())
	}
	if got, err := sp.GetBytes(ctx, "k"); err != nil || string(got) != "v" {
		t.Fatalf("read after a failed migration: %q, %v", got, err)
	}
}

// TestGrantOnNoSuchSpace grants, revokes and migrates on a space that
// does not exist: each says no such space (ErrNotFound, naming it), not
// that this node is not its home.
func TestGrantOnNoSuchSpace(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, time.Minute)
	a, b := c.Node(0), c.Node(1)
	sp, err := a.Spaces().Open(ctx, a.UserID(), "nosuch")
	if err != nil {
		t.Fatal(err)
	}
	_, err = sp.Grant(ctx, b.UserID(), space.Read, time.Time{})
	if !errors.Is(err, space.ErrNotFound) || errors.Is(err, space.ErrNotHome) || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("grant on a space that does not exist: %v", err)
	}
	if err := sp.Migrate(ctx, space.Policy{Local: true}, nil); !errors.Is(err, space.ErrNotFound) {
		t.Fatalf("migrate a space that does not exist: %v", err)
	}
	// A space that exists on another node is not this node's to
	// change, and the error names its home.
	if _, err := b.Spaces().Create(ctx, "elsewhere", space.Policy{Local: true}); err != nil {
		t.Fatal(err)
	}
	there, err := a.Spaces().Open(ctx, b.UserID(), "elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	if err := there.Revoke(ctx, "g"); !errors.Is(err, space.ErrNotHome) || !strings.Contains(err.Error(), b.ID().String()) {
		t.Fatalf("revoke on a space homed on another node: %v", err)
	}
}
