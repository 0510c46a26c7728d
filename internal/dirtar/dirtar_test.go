package dirtar

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	when := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := errors.Join(w.Dir("a", Meta{Mode: 0o700}), w.File("a/b.txt", 5, Meta{Mode: 0o4640, MTime: when}, strings.NewReader("hello")),
		w.Symlink("a/c", "b.txt"), w.File("d", 0, Meta{}, strings.NewReader("")), w.Close()); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := Read(&buf, func(e Entry, r io.Reader) error {
		b, _ := io.ReadAll(r)
		mtime := ""
		if !e.MTime.IsZero() {
			mtime = e.MTime.UTC().Format(time.RFC3339)
		}
		got = append(got, fmt.Sprintf("%s|%s|%s|%o|%s", e.Name, e.Target, b, e.Mode, mtime))
		return nil
	})
	// The set-uid bit never crosses; an entry with no mode or time has
	// none on the way out.
	want := "a|||700|,a/b.txt||hello|640|2021-03-04T05:06:07Z,a/c|b.txt||0|,d|||0|"
	if err != nil || strings.Join(got, ",") != want {
		t.Fatalf("read back %v, %v; want %s", got, err, want)
	}
}

func TestRefused(t *testing.T) {
	long := strings.Repeat("a/", maxName/2) + "b"
	for name, h := range map[string]*tar.Header{
		"hard link": {Typeflag: tar.TypeLink, Name: "x", Linkname: "y"},
		"device":    {Typeflag: tar.TypeChar, Name: "tty"},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(h)
		tw.Close()
		if err := Read(&buf, func(Entry, io.Reader) error { return nil }); err == nil {
			t.Errorf("%s: read without error", name)
		}
	}
	// Hostile names are refused, never cleaned into something else.
	for name, h := range map[string]*tar.Header{
		"absolute":       {Typeflag: tar.TypeReg, Name: "/etc/passwd"},
		"climbs out":     {Typeflag: tar.TypeReg, Name: "a/../../x"},
		"dot-dot":        {Typeflag: tar.TypeDir, Name: "../"},
		"dot-dot inside": {Typeflag: tar.TypeReg, Name: "a/../b"},
		"dot inside":     {Typeflag: tar.TypeReg, Name: "a/./b"},
		"leading dot":    {Typeflag: tar.TypeReg, Name: "./a"},
		"dot":            {Typeflag: tar.TypeDir, Name: "./"},
		"empty part":     {Typeflag: tar.TypeReg, Name: "a//b"},
		"empty":          {Typeflag: tar.TypeReg, Name: ""},
		"root":           {Typeflag: tar.TypeDir, Name: "/"},
		"too long":       {Typeflag: tar.TypeReg, Name: long},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tw.Close()
		visited := false
		err := Read(&buf, func(Entry, io.Reader) error { visited = true; return nil })
		if !errors.Is(err, ErrBadName) || visited {
			t.Errorf("%s: %v (visited: %v), want %v", name, err, visited, ErrBadName)
		}
	}
	// A NUL in a name: archive/tar stops at a NUL in a name field and
	// refuses one in a PAX record, so this is crafted by hand; either way
	// no entry comes through.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "é\x01b"}) // not ASCII: the name goes in a PAX record
	tw.Close()
	raw := buf.Bytes()
	i := bytes.Index(raw, []byte("path=é\x01b"))
	if i < 0 {
		t.Fatal("no PAX path record to alter")
	}
	raw[i+len("path=é")] = 0
	if err := Read(bytes.NewReader(raw), func(e Entry, _ io.Reader) error {
		t.Errorf("entry %q from a name with a NUL", e.Name)
		return nil
	}); err == nil {
		t.Error("a name with a NUL: read without error")
	}
	// A sparse file of a TiB in a stream of a few KiB.
	if err := Read(bytes.NewReader(sparseStream(t, 1<<40)), func(e Entry, _ io.Reader) error {
		t.Errorf("sparse entry %q of %d bytes", e.Name, e.Size)
		return nil
	}); err == nil {
		t.Error("a sparse file: read without error")
	}
}

// sparseStream is a stream of one PAX sparse file of size bytes, all hole
// but its last byte. archive/tar writes no sparse records, so they are
// written under another name and renamed in the bytes.
func sparseStream(t testing.TB, size int64) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "x", Size: 1, Format: tar.FormatPAX, PAXRecords: map[string]string{
		"GNU.xparse.size": fmt.Sprint(size), "GNU.xparse.numblocks": "1", "GNU.xparse.map": fmt.Sprintf("%d,1", size-1),
	}}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("z"))
	tw.Close()
	return bytes.ReplaceAll(buf.Bytes(), []byte("GNU.xparse."), []byte("GNU.sparse."))
}

// TestWriterRefuses: the writer makes no entry that Read would refuse,
// so a hostile name from a DAG stops the stream where it is met.
func TestWriterRefuses(t *testing.T) {
	for _, name := range []string{"", ".", "..", "../a", "a/../b", "./a", "a//b", "/a", "a\x00b"} {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		for kind, err := range map[string]error{
			"dir":     w.Dir(name, Meta{}),
			"file":    w.File(name, 1, Meta{}, strings.NewReader("x")),
			"symlink": w.Symlink(name, "t"),
		} {
			if !errors.Is(err, ErrBadName) {
				t.Errorf("%s %q: %v, want %v", kind, name, err, ErrBadName)
			}
		}
		if buf.Len() != 0 {
			t.Errorf("%q: %d bytes written", name, buf.Len())
		}
	}
	if err := NewWriter(io.Discard).Symlink("l", "a\x00b"); !errors.Is(err, ErrBadName) {
		t.Errorf("a target with NUL: %v", err)
	}
}

// plain is the rule FuzzRead holds Read to, said another way: cleaning the
// name changes nothing, and it names something local.
func plain(name string) bool {
	return name != "" && path.Clean(name) == name && filepath.IsLocal(name) &&
		!strings.HasPrefix(name, "../") && name != "." && !strings.ContainsRune(name, 0)
}

func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Dir("d", Meta{Mode: 0o755})
	w.File("d/x", 1, Meta{}, strings.NewReader("y"))
	w.Symlink("l", "d/x")
	w.Close()
	f.Add(buf.Bytes())
	for _, name := range []string{"../a", "a/../b", "a\x00b", "./a", "a//b"} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name})
		tw.Close()
		f.Add(buf.Bytes())
	}
	f.Add(sparseStream(f, 1<<20))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got int64
		Read(bytes.NewReader(data), func(e Entry, r io.Reader) error {
			if !plain(e.Name) {
				t.Fatalf("name %q let through", e.Name)
			}
			if strings.ContainsRune(e.Target, 0) {
				t.Fatalf("target %q let through", e.Target)
			}
			n, err := io.Copy(io.Discard, io.LimitReader(r, 1<<20))
			got += n
			return err
		})
		// Every byte of every file is a byte of the stream.
		if got > int64(len(data)) {
			t.Fatalf("%d bytes of files from a stream of %d", got, len(data))
		}
	})
}
