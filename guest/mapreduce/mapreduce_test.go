package mapreduce

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// splits cuts text into pieces of size bytes and reads each with
// Records: together they must give every line exactly once.
func TestRecordsSplitsExactly(t *testing.T) {
	texts := []string{
		"a b\ncc dd\n\neee\nf",
		"one line without a newline",
		"\n\n\n",
		strings.Repeat("word ", 30000) + "\nshort\n" + strings.Repeat("x", 70000) + "\n", // lines longer than the reader's buffer
	}
	for _, text := range texts {
		want := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
		for _, size := range []int64{1, 2, 3, 5, 7, 64, 1 << 16, int64(len(text)) + 1} {
			if len(text) > 1000 && size < 4096 {
				continue // each split reads from the start: keep it quick
			}
			var got []string
			for off := int64(0); off < int64(len(text)); off += size {
				err := Records(strings.NewReader(text), off, min(size, int64(len(text))-off), func(l []byte) error {
					got = append(got, string(l))
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			// Records skips empty lines: compare without them.
			if w, g := nonEmpty(want), nonEmpty(got); fmt.Sprint(w) != fmt.Sprint(g) {
				t.Fatalf("text of %d bytes in splits of %d: got %d lines, want %d", len(text), size, len(g), len(w))
			}
		}
	}
}

func nonEmpty(s []string) []string {
	var out []string
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

func TestPartition(t *testing.T) {
	// FNV-1a of "a" is 0xe40c292c; MAPREDUCE.md's worked example.
	if got := Partition("a", 7); got != int(uint32(0xe40c292c)%7) {
		t.Fatalf("Partition(a, 7) = %d", got)
	}
	if Partition("anything", 1) != 0 || Partition("", 3) != int(uint32(2166136261)%3) {
		t.Fatal("partition of one, or of the empty key")
	}
}

func TestReadMapAndOutput(t *testing.T) {
	in, err := ReadMap(strings.NewReader("nube-map 1\nreducers 3\nfile bafyx/a 10 20 100\nname dir/a b.txt\n"))
	if err != nil || in.Reducers != 3 || in.Path != "bafyx/a" || in.Offset != 10 || in.Length != 20 || in.Size != 100 || in.Name != "dir/a b.txt" {
		t.Fatalf("%+v, %v", in, err)
	}
	for _, bad := range []string{"", "nube-map 2\nreducers 1\nfile a 0 0 0\n", "nube-map 1\nfile a 0 0 0\n", "nube-map 1\nreducers 1\n", "nube-map 1\nreducers 1\nfile a -1 0 0\n"} {
		if _, err := ReadMap(strings.NewReader(bad)); err == nil {
			t.Fatalf("ReadMap(%q) took it", bad)
		}
	}
	o := NewOutput(3)
	var added [][]byte
	o.add = func(b []byte) (string, error) {
		added = append(added, bytes.Clone(b))
		return fmt.Sprintf("cid%d", len(added)), nil
	}
	o.Emit("k\tey", "v\nal")
	var out bytes.Buffer
	if err := o.Finish(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || len(added) != 1 || string(added[0]) != "k ey\tv al\n" || lines[Partition("k ey", 3)] != "cid1" {
		t.Fatalf("output %q, added %q", out.String(), added)
	}
	r, err := ReadReduce(strings.NewReader("nube-reduce 1\npartition 2\npart c1\npart c2\n"))
	if err != nil || r.Partition != 2 || len(r.Parts) != 2 {
		t.Fatalf("%+v, %v", r, err)
	}
}

func FuzzReadMap(f *testing.F) {
	f.Add("nube-map 1\nreducers 3\nfile bafyx/a 10 20 100\nname x\n")
	f.Add("nube-map 1\nreducers 1\nspace o/n key\n")
	f.Fuzz(func(t *testing.T, s string) {
		ReadMap(strings.NewReader(s))
		ReadReduce(strings.NewReader(s))
	})
}

func FuzzRecords(f *testing.F) {
	f.Add("a\nbb\n\nccc", int64(1), int64(3))
	f.Fuzz(func(t *testing.T, s string, off, length int64) {
		if off < 0 || off > int64(len(s)) {
			return
		}
		Records(strings.NewReader(s), off, length, func([]byte) error { return nil })
	})
}
