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
var trees = map[string]func(string, bool) (tree, error){"default": openTree, "os.Root": openRootTree}

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
				err := extract(bytes.NewReader(craft(t, victim, victimFile, tc.entries...)), out, Meta{}, Options{}, open)
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
// time of the entry reaches the link's target. A file's 0666 is saved as
// 0644 (no write for others); the directory the first extraction made
// keeps its mode and is not given the stream's again, so its time is the
// stream's only the first time.
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
				if err := extract(bytes.NewReader(buf.Bytes()), out, Meta{}, Options{}, open); err != nil {
					t.Fatalf("extract %d: %v", i+1, err)
				}
				for p, want := range map[string]fs.FileMode{"d": fs.ModeDir | 0o750, "d/f": 0o640, "g": 0o644} {
					fi, err := os.Lstat(filepath.Join(out, p))
					if err != nil || fi.Mode() != want || !fi.ModTime().Equal(when) && (p != "d" || i == 0) {
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
		Extract(bytes.NewReader(data), out, Meta{}, Options{MaxBytes: 1 << 20})
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
		if err := extract(bytes.NewReader(buf.Bytes()), out, Meta{}, Options{}, open); err != nil {
			t.Fatalf("%s: %v", way, err)
		}
		if b, err := os.ReadFile(filepath.Join(out, name)); err != nil || string(b) != "y" {
			t.Errorf("%s: %q, %v", way, b, err)
		}
	}
}

// TestExtractNoFollow: with NoFollow a symlink at dir is refused before
// anything is written; without, it is followed (the caller named it).
func TestExtractNoFollow(t *testing.T) {
	stream := craft(t, "", "", hostile{typ: tar.TypeReg, name: "f", body: "x"})
	for way, open := range trees {
		base := t.TempDir()
		victim, _, check := victims(t, base)
		out := filepath.Join(base, "out")
		if err := os.Symlink(victim, out); err != nil {
			t.Fatal(err)
		}
		err := extract(bytes.NewReader(stream), out, Meta{Mode: 0o777}, Options{NoFollow: true}, open)
		if !errors.Is(err, ErrDirIsSymlink) {
			t.Errorf("%s: %v, want ErrDirIsSymlink", way, err)
		}
		check()
		// The open alone refuses it too, as when a link takes the place
		// of the directory between its making and its opening.
		if _, err := open(out, false); !errors.Is(err, ErrDirIsSymlink) {
			t.Errorf("%s: open: %v, want ErrDirIsSymlink", way, err)
		}
		if err := extract(bytes.NewReader(stream), out, Meta{}, Options{}, open); err != nil {
			t.Errorf("%s: followed: %v", way, err)
		}
	}
}

// TestExtractKeepsModeOfDirThere: the stream's mode for the root goes on
// a directory the extraction made, never on one that was there (the
// user's "-o ."), and no mode gives others write.
func TestExtractKeepsModeOfDirThere(t *testing.T) {
	stream := craft(t, "", "",
		hostile{typ: tar.TypeDir, name: "d/", mode: 0o777},
		hostile{typ: tar.TypeDir, name: "there/", mode: 0o777},
		hostile{typ: tar.TypeReg, name: "f", body: "x", mode: 0o666})
	for way, open := range trees {
		out := t.TempDir()
		os.Chmod(out, 0o700)
		if err := os.Mkdir(filepath.Join(out, "there"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := extract(bytes.NewReader(stream), out, Meta{Mode: 0o777}, Options{}, open); err != nil {
			t.Fatalf("%s: %v", way, err)
		}
		for p, want := range map[string]fs.FileMode{".": fs.ModeDir | 0o700, "there": fs.ModeDir | 0o700, "d": fs.ModeDir | 0o755, "f": 0o644} {
			if fi, err := os.Lstat(filepath.Join(out, p)); err != nil || fi.Mode() != want {
				t.Errorf("%s: %s: %v, %v; want %v", way, p, fi.Mode(), err, want)
			}
		}
		made := filepath.Join(t.TempDir(), "new")
		if err := extract(bytes.NewReader(stream), made, Meta{Mode: 0o777}, Options{}, open); err != nil {
			t.Fatalf("%s: %v", way, err)
		}
		if fi, err := os.Lstat(made); err != nil || fi.Mode() != fs.ModeDir|0o755 {
			t.Errorf("%s: a directory it made: %v, %v; want 0755", way, fi.Mode(), err)
		}
	}
}

// TestExtractLimits: a stream over a cap stops with ErrTooLarge, and a
// file that would pass the byte cap is not written at all.
func TestExtractLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		ok   bool
	}{
		{"within", Options{MaxBytes: 6, MaxEntries: 4, MaxDepth: 2}, true},
		{"bytes", Options{MaxBytes: 5}, false},
		{"entries", Options{MaxEntries: 3}, false},
		{"depth", Options{MaxDepth: 1}, false},
	} {
		stream := craft(t, "", "",
			hostile{typ: tar.TypeDir, name: "d/"},
			hostile{typ: tar.TypeReg, name: "d/a", body: "abc"},
			hostile{typ: tar.TypeReg, name: "b", body: "def"},
			hostile{typ: tar.TypeSymlink, name: "l", target: "b"})
		out := t.TempDir()
		err := Extract(bytes.NewReader(stream), out, Meta{}, tc.o)
		if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v", tc.name, err)
		}
		if tc.name == "bytes" {
			if _, err := os.Lstat(filepath.Join(out, "b")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("bytes: the file over the cap was written: %v", err)
			}
		}
	}
}
