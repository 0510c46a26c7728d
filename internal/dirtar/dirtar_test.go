package dirtar

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := errors.Join(w.Dir("a"), w.File("a/b.txt", 5, strings.NewReader("hello")), w.Symlink("a/c", "b.txt"), w.Close()); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := Read(&buf, func(e Entry, r io.Reader) error {
		b, _ := io.ReadAll(r)
		got = append(got, e.Name+"|"+e.Target+"|"+string(b))
		return nil
	})
	if err != nil || strings.Join(got, ",") != "a||,a/b.txt||hello,a/c|b.txt|" {
		t.Fatalf("read back %v, %v", got, err)
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
	w.File("x", 1, strings.NewReader("y"))
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
