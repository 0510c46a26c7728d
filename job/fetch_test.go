package job

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/nubecloud/nube/content"
)

// barrierContent's Fetch waits until n fetches are under way at once, or
// its context ends: a fetcher that goes one part after the other never
// gets there.
type barrierContent struct {
	Content
	n       int
	mu      sync.Mutex
	in      int
	all     chan struct{}
	fail    cid.Cid
	fetched []cid.Cid
}

func (b *barrierContent) Fetch(ctx context.Context, c cid.Cid, _ func(content.FetchProgress)) error {
	b.mu.Lock()
	b.in++
	if b.in == b.n {
		close(b.all)
	}
	b.fetched = append(b.fetched, c)
	b.mu.Unlock()
	select {
	case <-b.all:
	case <-ctx.Done():
		return ctx.Err()
	}
	if c.Equals(b.fail) {
		return errors.New("nobody has it")
	}
	return nil
}

func partCID(t *testing.T, i int) cid.Cid {
	t.Helper()
	h, err := multihash.Sum([]byte(fmt.Sprint("part ", i)), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

// TestFetchPartsInParallel: a reducer's node fetches every part of its
// reduce at once, says how many it got and names the one it could not.
func TestFetchPartsInParallel(t *testing.T) {
	const n = 6
	f := &barrierContent{n: n, all: make(chan struct{})}
	m := &Manager{cfg: Config{Content: f}}
	var req fetchReq
	for i := range n {
		req.CIDs = append(req.CIDs, partCID(t, i).Bytes())
	}
	f.fail = partCID(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := m.serveFetch(ctx, req)
	if err != nil {
		t.Fatalf("the parts were not all fetched at once (%d of %d under way): %v", f.in, n, err)
	}
	if r.Fetched != n-1 || !strings.Contains(r.Err, f.fail.String()) {
		t.Fatalf("reply %+v, want %d fetched and part %s named", r, n-1, f.fail)
	}
	if len(f.fetched) != n {
		t.Fatalf("%d fetches, want %d", len(f.fetched), n)
	}
}

// TestFetchRefuses: a fetch of too many parts, or of something that is
// not a CID, is refused before anything is fetched.
func TestFetchRefuses(t *testing.T) {
	f := &barrierContent{n: 1, all: make(chan struct{})}
	m := &Manager{cfg: Config{Content: f}}
	if _, err := m.serveFetch(context.Background(), fetchReq{CIDs: make([][]byte, maxHas+1)}); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("too many parts: %v", err)
	}
	if _, err := m.serveFetch(context.Background(), fetchReq{CIDs: [][]byte{[]byte("junk")}}); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("a part that is no CID: %v", err)
	}
	if len(f.fetched) != 0 {
		t.Fatalf("fetched %v", f.fetched)
	}
}

// nopFetch fetches nothing and says so.
type nopFetch struct{ Content }

func (nopFetch) Fetch(context.Context, cid.Cid, func(content.FetchProgress)) error { return nil }

func FuzzServeFetch(f *testing.F) {
	f.Add([]byte{1, 0x55, 0x12, 0x20}, []byte{})
	m := &Manager{cfg: Config{Content: nopFetch{}}}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		r, err := m.serveFetch(context.Background(), fetchReq{CIDs: [][]byte{a, b}})
		if err == nil && r.Fetched != 2 {
			t.Fatalf("%+v with no error, want both fetched", r)
		}
		if err != nil && !errors.Is(err, ErrBadSpec) {
			t.Fatalf("%v, want ErrBadSpec", err)
		}
	})
}

func FuzzDecodePublished(f *testing.F) {
	f.Add([]byte(`{"kind":"nube-job/1","name":"wc","spec":{"input":"bafkqaaa","map":"m"}}`))
	f.Add([]byte(`{"kind":"other"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePublished(b)
		if err == nil && (p.Kind != publishedKind || p.Spec.Map == "") {
			t.Fatalf("accepted %+v", p)
		}
	})
}
