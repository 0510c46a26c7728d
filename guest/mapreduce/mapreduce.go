// Package mapreduce is the Go side of the map/reduce contract
// (MAPREDUCE.md) for modules built with GOOS=wasip1 GOARCH=wasm: it
// reads what a job gives a map or a reduce task on stdin, reads the map
// task's split record by record, partitions keyed records the way every
// job expects, adds the partitions as content and prints their CIDs, and
// reads a reduce task's parts. A module in another language does the
// same by following MAPREDUCE.md.
//
// A map module:
//
//	in, _ := mapreduce.ReadMap(os.Stdin)
//	out := mapreduce.NewOutput(in.Reducers)
//	in.Records(func(line []byte) error { … out.Emit(key, value) … })
//	out.Finish(os.Stdout)
//
// A reduce module:
//
//	in, _ := mapreduce.ReadReduce(os.Stdin)
//	in.Records(func(key, value string) error { … })
//	// print "key\tvalue\n" lines, sorted by key
package mapreduce

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/nubecloud/nube/guest"
)

// The first lines of a map and a reduce task's input.
const (
	MapHeader    = "nube-map 1"
	ReduceHeader = "nube-reduce 1"
)

// maxHeader caps the task description read from stdin.
const maxHeader = 1 << 20

// Partition returns which of r partitions key goes to: the 32-bit FNV-1a
// hash of its bytes, modulo r. Every map task of a job must use it.
func Partition(key string, r int) int {
	if r <= 1 {
		return 0
	}
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(r))
}

// MapInput is what a job gives one map task.
type MapInput struct {
	// Reducers is R, how many partitions to emit.
	Reducers int
	// Path is the file to read, "CID" or "CID/a/b"; empty for a space's
	// value.
	Path string
	// Offset and Length are the split's bytes within the file; Size is
	// the file's whole length.
	Offset, Length, Size int64
	// Space and Key name a space's value to read instead of a file.
	Space, Key string
	// Name is the input's name within the job: the file's path under the
	// input directory, or the space's key.
	Name string
}

// ReadMap reads a map task's description.
func ReadMap(r io.Reader) (MapInput, error) {
	var in MapInput
	lines, err := header(r, MapHeader)
	if err != nil {
		return in, err
	}
	for _, l := range lines {
		word, rest, _ := strings.Cut(l, " ")
		f := strings.Fields(rest)
		switch word {
		case "reducers":
			in.Reducers, err = strconv.Atoi(rest)
		case "file":
			if len(f) != 4 {
				return in, fmt.Errorf("map input: want file PATH OFFSET LENGTH SIZE, got %q", l)
			}
			in.Path = f[0]
			if in.Offset, err = strconv.ParseInt(f[1], 10, 64); err == nil {
				if in.Length, err = strconv.ParseInt(f[2], 10, 64); err == nil {
					in.Size, err = strconv.ParseInt(f[3], 10, 64)
				}
			}
		case "space":
			if len(f) != 2 {
				return in, fmt.Errorf("map input: want space OWNER/NAME KEY, got %q", l)
			}
			in.Space, in.Key = f[0], f[1]
		case "name":
			in.Name = rest
		}
		if err != nil {
			return in, fmt.Errorf("map input: %q: %w", l, err)
		}
	}
	if in.Reducers < 1 || in.Path == "" && in.Space == "" || in.Offset < 0 || in.Length < 0 {
		return in, fmt.Errorf("map input: reducers, and a file or a space, are required")
	}
	return in, nil
}

func header(r io.Reader, first string) ([]string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxHeader+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxHeader {
		return nil, fmt.Errorf("task input over %d bytes", maxHeader)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if lines[0] != first {
		return nil, fmt.Errorf("task input starts %q, want %q", lines[0], first)
	}
	return lines[1:], nil
}

// Open opens the task's input from its start: the file, or the space's
// value.
func (in MapInput) Open() (io.ReadCloser, error) {
	if in.Space != "" {
		return guest.Space(in.Space).Open(in.Key)
	}
	return guest.Open(in.Path)
}

// Records calls fn with each record (line, without its newline) of the
// task's split, as Records of an io.Reader does.
func (in MapInput) Records(fn func(line []byte) error) error {
	f, err := in.Open()
	if err != nil {
		return fmt.Errorf("open %s: %w", in.Name, err)
	}
	defer f.Close()
	length := in.Length
	if in.Space != "" {
		length = -1
	}
	return Records(f, in.Offset, length, fn)
}

// Records reads r from its start and calls fn with each line that starts
// within [offset, offset+length) (length < 0: to the end): the lines of
// one split. A line that starts before offset belongs to the split
// before; a line that starts inside and ends past the split is read to
// its end. A final line without a newline counts.
func Records(r io.Reader, offset, length int64, fn func(line []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	pos := int64(0)
	if offset > 0 {
		// Skip to offset-1: a line starts at offset only if the byte
		// before it ends one.
		n, err := io.CopyN(io.Discard, br, offset-1)
		pos += n
		if err != nil {
			return ignoreEOF(err)
		}
		c, err := br.ReadByte()
		if err != nil {
			return ignoreEOF(err)
		}
		pos++
		if c != '\n' {
			skipped, err := br.ReadSlice('\n')
			for errors.Is(err, bufio.ErrBufferFull) {
				pos += int64(len(skipped))
				skipped, err = br.ReadSlice('\n')
			}
			pos += int64(len(skipped))
			if err != nil {
				return ignoreEOF(err)
			}
		}
	}
	var long []byte
	for long != nil || length < 0 || pos < offset+length {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, line...)
			pos += int64(len(line))
			continue
		}
		pos += int64(len(line))
		if long != nil {
			line = append(long, line...)
			long = nil
		}
		if len(line) > 0 {
			if ferr := fn(bytes.TrimSuffix(line, []byte("\n"))); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return ignoreEOF(err)
		}
	}
	return nil
}

func ignoreEOF(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}

// Output collects a map task's keyed records in their partitions.
type Output struct {
	parts []bytes.Buffer
	add   func([]byte) (string, error)
}

// NewOutput returns an Output of r partitions.
func NewOutput(r int) *Output {
	return &Output{parts: make([]bytes.Buffer, max(r, 1)), add: guest.Add}
}

// Emit adds the record key<TAB>value to key's partition. A tab or a
// newline in the key, or a newline in the value, would break the record:
// each becomes a space.
func (o *Output) Emit(key, value string) {
	key = strings.Map(clean(true), key)
	value = strings.Map(clean(false), value)
	b := &o.parts[Partition(key, len(o.parts))]
	b.WriteString(key)
	b.WriteByte('\t')
	b.WriteString(value)
	b.WriteByte('\n')
}

func clean(key bool) func(rune) rune {
	return func(r rune) rune {
		if r == '\n' || r == '\r' || key && r == '\t' {
			return ' '
		}
		return r
	}
}

// Finish adds each non-empty partition as content on the node running
// the task and writes the map's output to w: one line per partition, its
// CID, or "-" when it is empty.
func (o *Output) Finish(w io.Writer) error {
	var out strings.Builder
	for i := range o.parts {
		if o.parts[i].Len() == 0 {
			out.WriteString("-\n")
			continue
		}
		c, err := o.add(o.parts[i].Bytes())
		if err != nil {
			return fmt.Errorf("add partition %d: %w", i, err)
		}
		out.WriteString(c)
		out.WriteByte('\n')
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// ReduceInput is what a job gives one reduce task.
type ReduceInput struct {
	// Partition is which partition this task reduces.
	Partition int
	// Parts are the CIDs of that partition as each map task emitted it.
	Parts []string
}

// ReadReduce reads a reduce task's description.
func ReadReduce(r io.Reader) (ReduceInput, error) {
	var in ReduceInput
	lines, err := header(r, ReduceHeader)
	if err != nil {
		return in, err
	}
	for _, l := range lines {
		word, rest, _ := strings.Cut(l, " ")
		switch word {
		case "partition":
			if in.Partition, err = strconv.Atoi(rest); err != nil {
				return in, fmt.Errorf("reduce input: %q: %w", l, err)
			}
		case "part":
			in.Parts = append(in.Parts, rest)
		}
	}
	return in, nil
}

// Records calls fn with every record of every part, part by part, each
// split at its first tab (a line without one is a key with an empty
// value).
func (in ReduceInput) Records(fn func(key, value string) error) error {
	for _, p := range in.Parts {
		f, err := guest.Open(p)
		if err != nil {
			return fmt.Errorf("open part %s: %w", p, err)
		}
		err = Records(f, 0, -1, func(line []byte) error {
			k, v, _ := strings.Cut(string(line), "\t")
			return fn(k, v)
		})
		f.Close()
		if err != nil {
			return fmt.Errorf("part %s: %w", p, err)
		}
	}
	return nil
}
