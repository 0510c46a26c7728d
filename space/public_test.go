package space_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
)

// TestPublicSpace: a public space stores a value as the file its bytes
// make (the CID content.Add gives them), so a site or an add of the same
// bytes shares its blocks; a sealed space's home holds no such block.
// Readers read both the same way.
func TestPublicSpace(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, time.Minute)
	a, b := c.Node(0), c.Node(1)
	small := []byte("<h1>hello</h1>")
	large := bytes.Repeat([]byte("a page of the site "), 40000) // 760 KB: through the store, not inline
	for _, public := range []bool{true, false} {
		name := "sealed"
		if public {
			name = "public"
		}
		sp, err := a.Spaces().Create(ctx, name, space.Policy{Local: true, Public: public})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sp.Grant(ctx, b.UserID(), space.Read, time.Time{}); err != nil {
			t.Fatal(err)
		}
		bs, err := b.Spaces().Open(ctx, a.UserID(), name)
		if err != nil {
			t.Fatal(err)
		}
		// Bytes of each space's own: both live on A.
		for k, v := range map[string][]byte{"index.html": append([]byte(name), small...), "big.html": append([]byte(name), large...)} {
			if err := sp.PutBytes(ctx, k, v); err != nil {
				t.Fatalf("%s: put %s: %v", name, k, err)
			}
			fc, err := content.FileCID(bytes.NewReader(v))
			if err != nil {
				t.Fatal(err)
			}
			has, err := a.Content().Has(ctx, fc)
			if err != nil {
				t.Fatal(err)
			}
			if has != public {
				t.Fatalf("%s: the home has the plain file of %s: %v, want %v", name, k, has, public)
			}
			got, err := bs.GetBytes(ctx, k)
			if err != nil || !bytes.Equal(got, v) {
				t.Fatalf("%s: B reads %s: %d bytes, %v", name, k, len(got), err)
			}
		}
		info, err := sp.Info(ctx)
		if err != nil || info.Policy.Public != public {
			t.Fatalf("%s: policy %+v (%v)", name, info.Policy, err)
		}
	}
	// A migration keeps the space public, whatever the policy says.
	sp, _ := a.Spaces().Open(ctx, "", "public")
	if err := sp.Migrate(ctx, space.Policy{Local: true}, nil); err != nil {
		t.Fatal(err)
	}
	if info, err := sp.Info(ctx); err != nil || !info.Policy.Public {
		t.Fatalf("after a migration: %+v (%v)", info.Policy, err)
	}
}
