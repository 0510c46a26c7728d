//go:build unix

package dirtar

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// hostile is one entry of a crafted stream, written as given: Writer
// would refuse most of these names.
type hostile struct {
	typ    byte
	name   string
	target string // a symlink's; "VICTIM" and "VICTIMFILE" stand for the paths outside
	mode   int64
	body   string
}

// craft writes entries as a raw tar stream, with the victim's paths put in.
func craft(t *testing.T, victim, victimFile string, entries ...hostile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		target := strings.NewReplacer("VICTIMFILE", victimFile, "VICTIM", victim).Replace(e.target)
		h := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: target, Mode: e.mode, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("crafting %q: %v", e.name, err)
		}
		if h.Size > 0 {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// victims makes, beside out, a directory and a file that no extraction
// into out may touch, and returns a check that they are as made and that
// nothing new appeared beside out.
func victims(t *testing.T, base string) (victim, victimFile string, check func()) {
	t.Helper()
	victim, victimFile = filepath.Join(base, "victim"), filepath.Join(base, "victim.txt")
	if err := os.Mkdir(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(victim, "keep"), []byte("original"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(victimFile, []byte("original"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Modes exact whatever the umask.
	os.Chmod(victim, 0o700)
	os.Chmod(victimFile, 0o600)
	return victim, victimFile, func() {
		t.Helper()
		names := func(dir string) []string {
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, e := range ents {
				out = append(out, e.Name())
			}
			return out
		}
		if got := names(base); !slices.Equal(got, []string{"out", "victim", "victim.txt"}) {
			t.Errorf("beside out: %v, want out, victim, victim.txt", got)
		}
		if got := names(victim); !slices.Equal(got, []string{"keep"}) {
			t.Errorf("in the victim directory: %v, want keep alone", got)
		}
		for p, mode := range map[string]fs.FileMode{victim: fs.ModeDir | 0o700, victimFile: 0o600, filepath.Join(victim, "keep"): 0o600} {
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != mode {
				t.Errorf("%s: mode %v, want %v", filepath.Base(p), fi.Mode(), mode)
			}
			if !fi.IsDir() {
				if b, _ := os.ReadFile(p); string(b) != "original" {
					t.Errorf("%s now holds %q", filepath.Base(p), b)
				}
			}
		}
	}
}

// trees are the ways Extract may write: on Linux openat2's and os.Root's,
// which other systems use and Linux falls back on.
var trees = map[string]func(string) (tree, error){"default": openTree, "os.Root": openRootTree}

// TestExtractHostile unpacks streams crafted to write outside the
// directory, or to change what lies outside it, through symlinks: each is
// refused with an error, and nothing outside changes.
func TestExtractHostile(t *testing.T) {
	const reg, dir, link = tar.TypeReg, tar.TypeDir, tar.TypeSymlink
	for _, tc := range []struct {
		name    string
		prepare func(out, victim string) // the output tree as an earlier get or its owner left it
		entries []hostile
		want    any // an error errors.Is finds, or words the message holds
	}{
		{"a link, then a directory of its name", nil, []hostile{
			{typ: link, name: "a", target: "VICTIM"},
			{typ: dir, name: "a/", mode: 0o755},
			{typ: reg, name: "a/pwned", body: "x", mode: 0o644},
		}, "a: there and not a symlink"},
		{"a link, then a file under it", nil, []hostile{
			{typ: link, name: "a", target: "VICTIM"},
			{typ: reg, name: "a/pwned", body: "x", mode: 0o644},
		}, os.ErrNotExist},
		{"a link deeper, then a file under it", nil, []hostile{
			{typ: dir, name: "d/", mode: 0o755},
			{typ: link, name: "d/a", target: "VICTIM"},
			{typ: reg, name: "d/a/pwned", body: "x", mode: 0o644},
		}, os.ErrNotExist},
		{"a link, then a directory's mode through it", nil, []hostile{
			{typ: link, name: "a", target: "VICTIM"},
			{typ: dir, name: "a/", mode: 0o777},
		}, "a: there and not a symlink"},
		{"a link named through a subdirectory's parent", nil, []hostile{
			{typ: dir, name: "sub/", mode: 0o755},
			{typ: link, name: "sub/../a", target: "VICTIM"},
			{typ: dir, name: "a/", mode: 0o755},
			{typ: reg, name: "a/pwned", body: "x", mode: 0o644},
		}, ErrBadName},
		{"a link already in the output tree", func(out, victim string) {
			if err := os.Symlink(victim, filepath.Join(out, "a")); err != nil {
				t.Fatal(err)
			}
		}, []hostile{
			{typ: dir, name: "a/", mode: 0o777},
			{typ: reg, name: "a/pwned", body: "x", mode: 0o644},
		}, ErrEscapes},
		{"a link already in the output tree, deeper", func(out, victim string) {
			if err := os.Mkdir(filepath.Join(out, "d"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, filepath.Join(out, "d", "a")); err != nil {
				t.Fatal(err)
			}
		}, []hostile{
			{typ: reg, name: "d/a/pwned", body: "x", mode: 0o644},
		}, ErrEscapes},
		{"a directory's mode through a link already there", func(out, victim string) {
			if err := os.Symlink(victim, filepath.Join(out, "a")); err != nil {
				t.Fatal(err)
			}
		}, []hostile{
			{typ: dir, name: "a/", mode: 0o777},
		}, ErrEscapes},
	} {
		for way, open := range trees {
			t.Run(way+"/"+tc.name, func(t *testing.T) {
				base := t.TempDir()
				victim, victimFile, check := victims(t, base)
				out := filepath.Join(base, "out")
				if err := os.Mkdir(out, 0o755); err != nil {
					t.Fatal(err)
				}
				if tc.prepare != nil {
					tc.prepare(out, victim)
				}
				err := extract(bytes.NewReader(craft(t, victim, victimFile, tc.entries...)), out, Meta{}, open)
				switch want := tc.want.(type) {
				case error:
					if !errors.Is(err, want) {
						t.Errorf("extract: %v, want %v", err, want)
					}
				case string:
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("extract: %v, want an error saying %q", err, want)
					}
				}
				check()
			})
		}
	}
}

// TestExtractReplaces: a second extraction into the same place replaces
// files and links, as the first made them or not: a link where a file
// goes is replaced, never written through, and neither the mode nor the
// time of the entry reaches the link's target.
func TestExtractReplaces(t *testing.T) {
	for way, open := range trees {
		t.Run(way, func(t *testing.T) {
			base := t.TempDir()
			_, victimFile, check := victims(t, base)
			out := filepath.Join(base, "out")
			when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range []*tar.Header{
				{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o750, ModTime: when},
				{Typeflag: tar.TypeReg, Name: "d/f", Size: 3, Mode: 0o640, ModTime: when},
				{Typeflag: tar.TypeReg, Name: "g", Size: 3, Mode: 0o666, ModTime: when},
				{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "d/f"},
			} {
				tw.WriteHeader(h)
				if h.Size > 0 {
					tw.Write([]byte("new"))
				}
			}
			tw.Close()
			for i := range 3 {
				if i == 1 {
					// The owner left links where the stream has a file
					// and a link: both are replaced.
					for _, p := range []string{"g", "l"} {
						os.Remove(filepath.Join(out, p))
						if err := os.Symlink(victimFile, filepath.Join(out, p)); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := extract(bytes.NewReader(buf.Bytes()), out, Meta{}, open); err != nil {
					t.Fatalf("extract %d: %v", i+1, err)
				}
				for p, want := range map[string]fs.FileMode{"d": fs.ModeDir | 0o750, "d/f": 0o640, "g": 0o666} {
					fi, err := os.Lstat(filepath.Join(out, p))
					if err != nil || fi.Mode() != want || !fi.ModTime().Equal(when) {
						t.Errorf("extract %d: %s: %v %v, %v; want %v %v", i+1, p, fi.Mode(), fi.ModTime(), err, want, when)
					}
				}
				if target, err := os.Readlink(filepath.Join(out, "l")); err != nil || target != "d/f" {
					t.Errorf("extract %d: the link is %q, %v", i+1, target, err)
				}
				if b, err := os.ReadFile(filepath.Join(out, "g")); err != nil || string(b) != "new" {
					t.Errorf("extract %d: g holds %q, %v", i+1, b, err)
				}
			}
			check()
			if parts, _ := filepath.Glob(filepath.Join(out, "*", ".*part*")); len(parts) > 0 {
				t.Errorf("part files left: %v", parts)
			}
		})
	}
}

// FuzzExtract unpacks arbitrary streams into a directory beside a victim
// directory and file, which links in a stream can reach as "../victim" and
// "../../victim": whatever the stream, nothing beside the directory
// changes.
func FuzzExtract(f *testing.F) {
	const reg, dir, link = tar.TypeReg, tar.TypeDir, tar.TypeSymlink
	for _, entries := range [][]hostile{
		{{typ: link, name: "a", target: "../victim"}, {typ: dir, name: "a/", mode: 0o777}, {typ: reg, name: "a/pwned", body: "x"}},
		{{typ: link, name: "a", target: "../victim"}, {typ: reg, name: "a/pwned", body: "x"}},
		{{typ: dir, name: "d/"}, {typ: link, name: "d/a", target: "../../victim"}, {typ: reg, name: "d/a/pwned", body: "x"}},
		{{typ: link, name: "f", target: "../victim.txt"}, {typ: reg, name: "f", body: "x", mode: 0o666}},
		{{typ: dir, name: "sub/"}, {typ: link, name: "sub/../a", target: "../victim"}, {typ: dir, name: "a/"}, {typ: reg, name: "a/pwned", body: "x"}},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range entries {
			h := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.target, Mode: e.mode}
			if e.typ == reg {
				h.Size = int64(len(e.body))
			}
			tw.WriteHeader(h)
			tw.Write([]byte(e.body))
		}
		tw.Close()
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		_, _, check := victims(t, base)
		out := filepath.Join(base, "out")
		Extract(bytes.NewReader(data), out, Meta{})
		check()
		// Let the cleanup remove what a stream made read-only.
		filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o700)
			}
			return nil
		})
	})
}

// TestExtractLongName: a file whose name takes all 255 bytes a directory
// entry allows still goes through a part file beside it.
func TestExtractLongName(t *testing.T) {
	name := strings.Repeat("é", 127) + "x" // 255 bytes
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: 1, Mode: 0o644})
	tw.Write([]byte("y"))
	tw.Close()
	for way, open := range trees {
		out := t.TempDir()
		if err := extract(bytes.NewReader(buf.Bytes()), out, Meta{}, open); err != nil {
			t.Fatalf("%s: %v", way, err)
		}
		if b, err := os.ReadFile(filepath.Join(out, name)); err != nil || string(b) != "y" {
			t.Errorf("%s: %q, %v", way, b, err)
		}
	}
}
