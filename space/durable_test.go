package space_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
)

// TestHeadOutlivesNodes: the home (A) and the holder (B) of a space stop;
// a reader (C) given only OWNER/NAME, which never read the space before,
// resolves its last head from the DHT and reads a value whose blocks D
// still provides (D pinned the space's root, ciphertext it cannot read).
func TestHeadOutlivesNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("short: stops nodes and waits on the DHT")
	}
	c := nubetest.Cluster(t, 4)
	ctx := nubetest.Context(t, 2*time.Minute)
	a, b, cn, d := c.Node(0), c.Node(1), c.Node(2), c.Node(3)
	sp, err := a.Spaces().Create(ctx, "docs", space.Policy{On: []peer.ID{b.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Grant(ctx, cn.UserID(), space.Read, time.Time{}); err != nil {
		t.Fatal(err)
	}
	small := []byte("the last word")
	large := bytes.Repeat([]byte("a value that goes through the fetcher "), 20000) // 760 KB, not inline
	if err := sp.PutBytes(ctx, "small", small); err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "large", large); err != nil {
		t.Fatal(err)
	}
	info, err := sp.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	root, err := cid.Decode(info.Root)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Content().Pin(ctx, root, "backup of docs", nil); err != nil {
		t.Fatal(err)
	}
	// The last head reaches the DHT in the background: wait until C's
	// DHT finds it.
	key := space.HeadKey(sp.ID())
	nubetest.Eventually(t, ctx, func() bool {
		v, err := cn.Sys().DHT().GetValue(ctx, key)
		if err != nil {
			return false
		}
		return (space.HeadValidator{}).Validate(key, v) == nil && headSeq(t, v) == info.Seq
	}, func() string { return "the DHT never gave the last head" })
	c.Kill(0)
	c.Kill(1)

	cs, err := cn.Spaces().Open(ctx, a.UserID(), "docs")
	if err != nil {
		t.Fatal(err)
	}
	got, err := cs.GetBytes(ctx, "small")
	if err != nil || !bytes.Equal(got, small) {
		t.Fatalf("small with home and holder off: %q, %v", got, err)
	}
	got, err = cs.GetBytes(ctx, "large")
	if err != nil || !bytes.Equal(got, large) {
		t.Fatalf("large with home and holder off: %d bytes, %v", len(got), err)
	}
	ci, err := cs.Info(ctx)
	if err != nil || ci.Seq != info.Seq {
		t.Fatalf("C resolved seq %d (%v), the last is %d", ci.Seq, err, info.Seq)
	}
}

func headSeq(t *testing.T, b []byte) uint64 {
	t.Helper()
	return space.HeadSeq(b)
}
