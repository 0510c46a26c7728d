package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/wasm"
)

// maxTasks caps the map tasks of one job.
const maxTasks = 1 << 20

// plan cuts the input into map tasks and makes the reduce tasks.
func (c *coord) plan(ctx context.Context) error {
	var maps []*task
	if strings.HasPrefix(c.spec.Input, "space:") {
		space, prefix, _, _ := splitSpaceInput(c.spec.Input)
		if c.m.cfg.Keys == nil {
			return fmt.Errorf("%w: this node has no space layer to list %s", ErrBadSpec, space)
		}
		keys, err := c.m.cfg.Keys(ctx, space, prefix)
		if err != nil {
			return fmt.Errorf("%w: list %s under %q: %v", ErrInputNotFound, space, prefix, err)
		}
		for _, k := range keys {
			maps = append(maps, &task{Space: space, Key: k, Input: k})
		}
	} else {
		files, err := c.files(ctx, c.spec.Input, "")
		if err != nil {
			return err
		}
		for _, f := range files {
			maps = append(maps, c.split(f)...)
			if len(maps) > maxTasks {
				return fmt.Errorf("%w: more than %d map tasks; split in larger pieces", ErrBadSpec, maxTasks)
			}
		}
	}
	for i, t := range maps {
		t.Name = fmt.Sprintf("map-%05d", i)
	}
	var reduces []*task
	if c.spec.Reduce != "" {
		for p := range c.spec.Reducers {
			reduces = append(reduces, &task{Name: fmt.Sprintf("reduce-%05d", p), Partition: p})
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec.Maps, c.rec.Reduces, c.rec.Planned = maps, reduces, true
	return c.saveLocked()
}

// inputFile is one file of a job's input.
type inputFile struct {
	path, name string
	root       cid.Cid
	size       int64
}

// files lists the files at p (a file, or every file under a directory in
// path order), naming each by its path under the input.
func (c *coord) files(ctx context.Context, p, name string) ([]inputFile, error) {
	e, err := c.m.cfg.Content.Stat(ctx, p)
	if err != nil {
		return nil, missing(ctx, p, err)
	}
	switch e.Kind {
	case content.KindFile:
		if name == "" {
			name = path.Base(p)
		}
		return []inputFile{{path: p, name: name, root: e.CID, size: int64(e.Size)}}, nil
	case content.KindDir:
	default:
		return nil, nil // a symlink: not followed
	}
	entries, err := c.m.cfg.Content.List(ctx, p)
	if err != nil {
		return nil, missing(ctx, p, err)
	}
	var out []inputFile
	for _, en := range entries {
		sub := path.Join(name, en.Name)
		switch en.Kind {
		case content.KindFile:
			out = append(out, inputFile{path: en.CID.String(), name: sub, root: en.CID, size: int64(en.Size)})
		case content.KindDir:
			more, err := c.files(ctx, en.CID.String(), sub)
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
		}
	}
	return out, nil
}

// missing says that p could not be found, naming it.
func missing(ctx context.Context, p string, err error) error {
	if ctx.Err() != nil || errors.Is(err, content.ErrNotFound) || errors.Is(err, content.ErrNoProvider) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: no node could be found holding %s: %v", ErrInputNotFound, p, err)
	}
	return fmt.Errorf("input %s: %w", p, err)
}

// split cuts one file into map tasks.
func (c *coord) split(f inputFile) []*task {
	size := c.spec.Split.Size
	if size <= 0 || f.size <= size {
		return []*task{{Path: f.path, Root: f.root.String(), Length: f.size, Size: f.size, Input: f.name}}
	}
	var out []*task
	for off := int64(0); off < f.size; off += size {
		out = append(out, &task{Path: f.path, Root: f.root.String(), Offset: off, Length: min(size, f.size-off), Size: f.size, Input: f.name})
	}
	return out
}

// mapInput is what a map task's module reads on stdin (MAPREDUCE.md).
func (c *coord) mapInput(t *task) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "nube-map 1\nreducers %d\n", c.spec.Reducers)
	if t.Space != "" {
		fmt.Fprintf(&b, "space %s %s\n", t.Space, t.Key)
	} else {
		fmt.Fprintf(&b, "file %s %d %d %d\n", oneLine.Replace(t.Path), t.Offset, t.Length, t.Size)
	}
	fmt.Fprintf(&b, "name %s\n", oneLine.Replace(t.Input))
	return []byte(b.String())
}

// oneLine keeps a name on its line of a module's input.
var oneLine = strings.NewReplacer("\n", " ", "\r", " ")

// reduceInput is what reduce task t's module reads on stdin: its
// partition of every map's output, in the maps' order.
func (c *coord) reduceInput(t *task) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "nube-reduce 1\npartition %d\n", t.Partition)
	c.mu.Lock()
	for _, mt := range c.rec.Maps {
		if t.Partition < len(mt.Out) && mt.Out[t.Partition] != "" {
			fmt.Fprintf(&b, "part %s\n", mt.Out[t.Partition])
		}
	}
	c.mu.Unlock()
	return []byte(b.String())
}

// parseMapOutput reads a map's output: R lines, each a CID or "-".
func parseMapOutput(out []byte, r int) ([]string, error) {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != r {
		return nil, fmt.Errorf("%w: a map gave %d lines, want one per partition (%d)", ErrBadContract, len(lines), r)
	}
	parts := make([]string, r)
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if l == "-" || l == "" {
			continue
		}
		c, err := cid.Decode(l)
		if err != nil {
			return nil, fmt.Errorf("%w: partition %d: %q is not a CID", ErrBadContract, i, l)
		}
		parts[i] = c.String()
	}
	return parts, nil
}

// holders asks every node the job may use which of the map tasks' files
// it holds, and adds what Locate finds of those none answered for.
func (c *coord) holders(ctx context.Context, nodes []peer.ID) map[string]map[peer.ID]bool {
	roots := map[string]bool{}
	var list [][]byte
	var order []string
	c.mu.Lock()
	for _, t := range c.rec.Maps {
		if t.Root != "" && !roots[t.Root] && len(list) < maxHas {
			if r, err := cid.Decode(t.Root); err == nil {
				roots[t.Root] = true
				list = append(list, r.Bytes())
				order = append(order, t.Root)
			}
		}
	}
	c.mu.Unlock()
	out := map[string]map[peer.ID]bool{}
	// A space's values are on its home and holders.
	c.mu.Lock()
	spaces := map[string]bool{}
	for _, t := range c.rec.Maps {
		if t.Space != "" {
			spaces[t.Space] = true
		}
	}
	c.mu.Unlock()
	for sp := range spaces {
		if c.m.cfg.Locate == nil {
			break
		}
		found, err := c.m.cfg.Locate(ctx, sp)
		if err != nil {
			c.logf(nil, "", "could not find the holders of %s: maps run by load: %v", sp, err)
			continue
		}
		out[placeKey(&task{Space: sp})] = map[peer.ID]bool{}
		for _, p := range found {
			out[placeKey(&task{Space: sp})][p] = true
		}
	}
	add := func(p peer.ID, has []bool) {
		for i, h := range has {
			if h && i < len(order) {
				if out[order[i]] == nil {
					out[order[i]] = map[peer.ID]bool{}
				}
				out[order[i]][p] = true
			}
		}
	}
	if len(list) == 0 {
		return out
	}
	req := hasReq{CIDs: list}
	if root, err := cid.Decode(strings.SplitN(c.spec.Input, "/", 2)[0]); err == nil {
		req.Input = root.Bytes()
	}
	if slices.Contains(nodes, c.m.self) {
		r, _ := c.m.serveHas(ctx, req)
		add(c.m.self, r.Has)
	}
	var others []peer.ID
	for _, p := range nodes {
		if p != c.m.self {
			others = append(others, p)
		}
	}
	for p, r := range hasFn.OnAll(ctx, c.m.cfg.Remote, others, req) {
		if r.Err == nil {
			add(p, r.Value.Has)
		}
	}
	return out
}

// placeKey names what a map task reads, for its holders.
func placeKey(t *task) string {
	if t.Space != "" {
		return "space:" + t.Space
	}
	return t.Root
}

// result makes the result directory: the reduce outputs as part-NNNNN,
// or without a reduce the maps' outputs as map-NNNNN.
func (c *coord) makeResult(ctx context.Context) (cid.Cid, error) {
	type file struct{ name, cid string }
	var files []file
	c.mu.Lock()
	if len(c.rec.Reduces) > 0 {
		for _, t := range c.rec.Reduces {
			files = append(files, file{fmt.Sprintf("part-%05d", t.Partition), first(t.Out)})
		}
	} else {
		for i, t := range c.rec.Maps {
			files = append(files, file{fmt.Sprintf("map-%05d", i), first(t.Out)})
		}
	}
	c.mu.Unlock()
	return c.m.cfg.Content.AddTree(ctx, func(put func(string, io.Reader) error, _ func(string) error, _ func(string, string) error) error {
		for _, f := range files {
			var r io.Reader = strings.NewReader("")
			if f.cid != "" {
				g, err := c.m.cfg.Content.Get(ctx, f.cid)
				if err != nil {
					return fmt.Errorf("fetch %s (%s): %w", f.name, f.cid, err)
				}
				defer g.Close()
				r = g
			}
			if err := put(f.name, r); err != nil {
				return err
			}
		}
		return nil
	}, content.AddOptions{Name: "job " + c.id})
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// runTimeout is the run limit a task's runs get, as the service layer
// computes it.
func (c *coord) runTimeout(d *service.Descriptor) time.Duration {
	if c.spec.TaskTimeout > 0 {
		return c.spec.TaskTimeout
	}
	if d.Limits.Timeout > 0 {
		return d.Limits.Timeout
	}
	return wasm.DefaultTimeout
}
