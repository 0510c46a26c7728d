package dirtar

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
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
	for name, h := range map[string]*tar.Header{
		"absolute":   {Typeflag: tar.TypeReg, Name: "/etc/passwd"},
		"climbs out": {Typeflag: tar.TypeReg, Name: "a/../../x"},
		"hard link":  {Typeflag: tar.TypeLink, Name: "x", Linkname: "y"},
		"device":     {Typeflag: tar.TypeChar, Name: "tty"},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(h)
		tw.Close()
		if err := Read(&buf, func(Entry, io.Reader) error { return nil }); err == nil {
			t.Errorf("%s: read without error", name)
		}
	}
}

func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.File("x", 1, Meta{}, strings.NewReader("y"))
	w.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		Read(bytes.NewReader(data), func(e Entry, r io.Reader) error {
			if strings.HasPrefix(e.Name, "/") || strings.HasPrefix(e.Name, "../") || e.Name == ".." {
				t.Fatalf("escaping name %q let through", e.Name)
			}
			_, err := io.Copy(io.Discard, io.LimitReader(r, 1<<20))
			return err
		})
	})
}
