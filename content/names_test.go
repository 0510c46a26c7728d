package content_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	mdag "github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/nubetest"
)

// hostileDAGs are directories whose names would put a file outside the
// directory they are saved into, or a link where a directory is written:
// each with the path of the directory that holds the bad name, below the
// root, and the name.
func hostileDAGs(t *testing.T) map[string]struct {
	car      []byte
	root     cid.Cid
	dir, bad string
} {
	out := map[string]struct {
		car      []byte
		root     cid.Cid
		dir, bad string
	}{}
	add := func(name, dir, bad string, build func(b *nubetest.DAG) *mdag.ProtoNode) {
		b := nubetest.NewDAG(t)
		root := build(b)
		out[name] = struct {
			car      []byte
			root     cid.Cid
			dir, bad string
		}{b.CAR(root), root.Cid(), dir, bad}
	}
	add("climbs out of a subdirectory", "A", "../a", func(b *nubetest.DAG) *mdag.ProtoNode {
		return b.Dir("A", b.Dir("../a", b.Symlink("/home")), "a", b.Dir("pwned", b.File("x")))
	})
	add("dot-dot", "", "..", func(b *nubetest.DAG) *mdag.ProtoNode { return b.Dir("..", b.Dir("pwned", b.File("x"))) })
	add("dot", "", ".", func(b *nubetest.DAG) *mdag.ProtoNode { return b.Dir(".", b.Dir("pwned", b.File("x"))) })
	add("empty", "", "", func(b *nubetest.DAG) *mdag.ProtoNode { return b.Dir("", b.File("x")) })
	add("a slash", "", "a/b", func(b *nubetest.DAG) *mdag.ProtoNode {
		return b.Dir("a", b.Symlink("/home"), "a/b", b.File("x"))
	})
	add("a NUL", "", "a\x00b", func(b *nubetest.DAG) *mdag.ProtoNode { return b.Dir("a\x00b", b.File("x")) })
	add("a link, then a directory of its name", "", "a", func(b *nubetest.DAG) *mdag.ProtoNode {
		return b.Dir("a", b.Symlink("/home"), "a", b.Dir("pwned", b.File("x")))
	})
	return out
}

// bareService is a content service on one bare host with a store in memory.
func bareService(t *testing.T) *content.Service {
	t.Helper()
	st, err := content.OpenStore("")
	if err != nil {
		t.Fatal(err)
	}
	s, err := content.New(context.Background(), content.Config{Host: hosttest.Hosts(t, 1)[0], Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); st.Close() })
	return s
}

// TestHostileNames imports DAGs whose links have hostile names: listing
// the directory that holds one is refused with ErrBadName and the name,
// as is a path through "." or "..", while the rest of the DAG still
// reads.
func TestHostileNames(t *testing.T) {
	s := bareService(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for name, tc := range hostileDAGs(t) {
		if _, err := s.ImportCAR(ctx, bytes.NewReader(tc.car), content.ImportOptions{}); err != nil {
			t.Fatalf("%s: import: %v", name, err)
		}
		at := tc.root.String()
		if tc.dir != "" {
			at += "/" + tc.dir
			// The directory above the bad name lists.
			if _, err := s.List(ctx, tc.root.String()); err != nil {
				t.Errorf("%s: list the root: %v", name, err)
			}
		}
		entries, err := s.List(ctx, at)
		if !errors.Is(err, content.ErrBadName) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.bad)) {
			t.Errorf("%s: list %s: %v, %v; want %v naming %q", name, at, entries, err, content.ErrBadName, tc.bad)
		}
	}
	// A path through "." or ".." is refused, not resolved, whatever the
	// directory holds.
	tc := hostileDAGs(t)["dot-dot"]
	for _, p := range []string{"/..", "/../pwned/..", "/./pwned"} {
		if _, err := s.Stat(ctx, tc.root.String()+p); !errors.Is(err, content.ErrBadName) {
			t.Errorf("stat %s: %v, want %v", p, err, content.ErrBadName)
		}
		if f, err := s.Get(ctx, tc.root.String()+p); !errors.Is(err, content.ErrBadName) {
			if f != nil {
				f.Close()
			}
			t.Errorf("get %s: %v, want %v", p, err, content.ErrBadName)
		}
	}
	// A plain path into a directory with a bad name elsewhere still reads.
	tc = hostileDAGs(t)["climbs out of a subdirectory"]
	f, err := s.Get(ctx, tc.root.String()+"/a/pwned")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "x" {
		t.Errorf("a/pwned: %q", b)
	}
}

// TestAddTreeRefusesNames: a tree to add with a path that is not plain
// names is refused, not cleaned into another path.
func TestAddTreeRefusesNames(t *testing.T) {
	s := bareService(t)
	ctx := context.Background()
	for _, p := range []string{"a/../b", "./a", "a/./b", "a//b", "a\x00b", "..", "../a"} {
		_, err := s.AddTree(ctx, func(put func(string, io.Reader) error, mkdir func(string) error, link func(string, string) error) error {
			return put(p, strings.NewReader("x"))
		}, content.AddOptions{NoPin: true})
		if !errors.Is(err, content.ErrBadName) {
			t.Errorf("add %q: %v, want %v", p, err, content.ErrBadName)
		}
	}
	// A slash at either end is still fine.
	if _, err := s.AddTree(ctx, func(put func(string, io.Reader) error, mkdir func(string) error, link func(string, string) error) error {
		if err := mkdir("d/"); err != nil {
			return err
		}
		return put("/d/f", strings.NewReader("x"))
	}, content.AddOptions{NoPin: true}); err != nil {
		t.Error(err)
	}
}

// FuzzCheckName holds CheckName to its rule said another way: a name
// passes if and only if it is one part of a path, neither "." nor "..",
// with no NUL.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"a", "", ".", "..", "a/b", "a\x00", "...", ".a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		parts := strings.Split(name, "/")
		plain := len(parts) == 1 && name != "" && name != "." && name != ".." && !strings.ContainsRune(name, 0)
		if err := content.CheckName(name); (err == nil) != plain {
			t.Fatalf("CheckName(%q) = %v", name, err)
		}
	})
}

func TestCheckNames(t *testing.T) {
	for _, tc := range []struct {
		names []string
		ok    bool
	}{
		{nil, true},
		{[]string{"a", "b", ".a", "..."}, true},
		{[]string{"a", "b", "a"}, false},
		{[]string{"a", ".."}, false},
	} {
		if err := content.CheckNames(tc.names); (err == nil) != tc.ok || (err != nil && !errors.Is(err, content.ErrBadName)) {
			t.Errorf("CheckNames(%q) = %v", tc.names, err)
		}
	}
}
