package job

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/nubecloud/nube/content"
)

func TestSpecDefaults(t *testing.T) {
	const c = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
	s, err := Spec{Input: c, Map: "m", Reduce: "r"}.withDefaults()
	if err != nil || s.Reducers != 1 || s.Timeout != DefaultTimeout || s.MaxAttempts != DefaultAttempts {
		t.Fatalf("%+v, %v", s, err)
	}
	if s, err := (Spec{Input: "space:owner/notes/logs/", Map: "m"}).withDefaults(); err != nil || s.Reducers != 1 {
		t.Fatalf("space input: %+v, %v", s, err)
	}
	for name, bad := range map[string]Spec{
		"no input":       {Map: "m"},
		"no map":         {Input: c},
		"not a CID":      {Input: "nope", Map: "m"},
		"a bad space":    {Input: "space:owner", Map: "m"},
		"reducers":       {Input: c, Map: "m", Reducers: -1},
		"too many":       {Input: c, Map: "m", Reducers: maxReducers + 1},
		"split":          {Input: c, Map: "m", Split: Split{Size: -1}},
		"fraction":       {Input: c, Map: "m", VerifyFraction: 1.5},
		"NaN fraction":   {Input: c, Map: "m", VerifyFraction: nan()},
		"negative tries": {Input: c, Map: "m", MaxAttempts: -1},
	} {
		if _, err := bad.withDefaults(); !errors.Is(err, ErrBadSpec) {
			t.Errorf("%s: %v, want ErrBadSpec", name, err)
		}
	}
}

func nan() float64 { z := 0.0; return z / z }

func TestSplit(t *testing.T) {
	c := &coord{spec: Spec{Split: Split{Size: 10}}}
	root, _ := cid.Decode("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
	ts := c.split(inputFile{path: "p", root: root, size: 25})
	if len(ts) != 3 || ts[2].Offset != 20 || ts[2].Length != 5 || ts[0].Length != 10 {
		t.Fatalf("%+v", ts)
	}
	c.spec.Split.Size = 0
	if ts := c.split(inputFile{path: "p", root: root, size: 25}); len(ts) != 1 || ts[0].Length != 25 {
		t.Fatalf("per file: %+v", ts)
	}
}

func TestParseMapOutput(t *testing.T) {
	const c = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
	out, err := parseMapOutput([]byte(c+"\n-\n"), 2)
	if err != nil || out[0] != c || out[1] != "" {
		t.Fatalf("%q, %v", out, err)
	}
	for _, bad := range []string{"", c + "\n", "x\n-\n", "-\n-\n-\n"} {
		if _, err := parseMapOutput([]byte(bad), 2); !errors.Is(err, ErrBadContract) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParseMapOutput(f *testing.F) {
	f.Add([]byte("-\n-\n"), 2)
	f.Add([]byte("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy\n"), 1)
	f.Fuzz(func(t *testing.T, b []byte, r int) {
		if r < 1 || r > maxReducers {
			return
		}
		out, err := parseMapOutput(b, r)
		if err == nil && len(out) != r {
			t.Fatalf("%d parts for %d reducers", len(out), r)
		}
	})
}

func TestCheckID(t *testing.T) {
	if checkID(newID()) != nil {
		t.Fatal("a new ID refused")
	}
	for _, bad := range []string{"", "../x", "a/b", "a.json", strings.Repeat("a", 65), "a\x00"} {
		if checkID(bad) == nil {
			t.Errorf("%q taken", bad)
		}
	}
}

// fakeContent answers Has and Pins; nothing else is called by serveHas.
type fakeContent struct {
	Content
	has    map[string]bool
	pinned []cid.Cid
}

func (f fakeContent) Has(_ context.Context, c cid.Cid) (bool, error) {
	return f.has[c.KeyString()], nil
}
func (f fakeContent) Pins(context.Context) ([]content.Pin, error) {
	var out []content.Pin
	for _, c := range f.pinned {
		out = append(out, content.Pin{CID: c})
	}
	return out, nil
}

func TestServeHas(t *testing.T) {
	raw, _ := cid.V1Builder{Codec: cid.Raw, MhType: 0x12}.Sum([]byte("one block"))
	big, _ := cid.V1Builder{Codec: cid.DagProtobuf, MhType: 0x12}.Sum([]byte("a root of many"))
	dir, _ := cid.V1Builder{Codec: cid.DagProtobuf, MhType: 0x12}.Sum([]byte("a directory"))
	f := fakeContent{has: map[string]bool{raw.KeyString(): true, big.KeyString(): true}}
	m := &Manager{cfg: Config{Content: f}}
	ask := func(input []byte) []bool {
		r, err := m.serveHas(context.Background(), hasReq{CIDs: [][]byte{raw.Bytes(), big.Bytes(), []byte("junk")}, Input: input})
		if err != nil {
			t.Fatal(err)
		}
		return r.Has
	}
	// A root block alone is not the file; one block is; a pinned input
	// holds all under it.
	if got := ask(nil); !got[0] || got[1] || got[2] {
		t.Fatalf("unpinned: %v", got)
	}
	f.pinned = []cid.Cid{dir}
	m.cfg.Content = f
	if got := ask(dir.Bytes()); !got[0] || !got[1] || got[2] {
		t.Fatalf("under a pinned input: %v", got)
	}
	if _, err := m.serveHas(context.Background(), hasReq{CIDs: make([][]byte, maxHas+1)}); err == nil {
		t.Fatal("an oversized question answered")
	}
}

func FuzzServeHas(f *testing.F) {
	f.Add([]byte{1, 0x55, 0x12, 0x20}, []byte{})
	m := &Manager{cfg: Config{Content: fakeContent{}}}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		r, err := m.serveHas(context.Background(), hasReq{CIDs: [][]byte{a, b}, Input: b})
		if err != nil || len(r.Has) != 2 {
			t.Fatalf("%v, %v", r, err)
		}
	})
}
