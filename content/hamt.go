package content

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync"

	mdag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/hamt"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	bitfield "github.com/ipfs/go-bitfield"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// maxFanout is boxo's widest HAMT shard.
const maxFanout = 1 << 10

// checkShard checks the HAMT shard n, whose UnixFS data is fsn, as boxo
// would read it, and returns the CIDs it links as shards: murmur3, a
// fanout a power of two from 8 to 1024, a bitfield no wider than the
// fanout with one bit per link, and each link named by the index of its
// bit, in order, as upper-case hex padded to the fanout's width (just
// that for a shard, followed by the entry's name for an entry).
func checkShard(n *mdag.ProtoNode, fsn *ft.FSNode) ([]cid.Cid, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("HAMT shard %s: %w: %s", n.Cid(), ErrMalformed, fmt.Sprintf(format, args...))
	}
	if fsn.HashType() != hamt.HashMurmur3 {
		return nil, bad("hash function %#x, not murmur3", fsn.HashType())
	}
	fanout := fsn.Fanout()
	if fanout < 8 || fanout > maxFanout || bits.OnesCount64(fanout) != 1 {
		return nil, bad("fanout %d, not a power of two from 8 to %d", fanout, maxFanout)
	}
	bf, err := bitfield.FromBytes(int(fanout), fsn.Data())
	if err != nil {
		return nil, bad("bitfield of %d bytes for a fanout of %d", len(fsn.Data()), fanout)
	}
	links := n.Links()
	pad := len(fmt.Sprintf("%X", fanout-1))
	var shards []cid.Cid
	k := 0
	for i := range int(fanout) {
		if !bf.Bit(i) {
			continue
		}
		if k == len(links) {
			return nil, bad("%d links for more bits set", len(links))
		}
		l := links[k]
		if want := fmt.Sprintf("%0*X", pad, i); !strings.HasPrefix(l.Name, want) {
			return nil, bad("link %d is named %q, not %s…", k, l.Name, want)
		}
		if len(l.Name) == pad {
			shards = append(shards, l.Cid)
		}
		k++
	}
	if k != len(links) {
		return nil, bad("%d links for %d bits set", len(links), k)
	}
	return shards, nil
}

// checkedGetter is a NodeGetter that checks every HAMT shard it hands
// out (checkShard), and that each node a checked shard links as a shard
// is one: boxo's HAMT code would fail on either with an error of no kind
// (500), or find the wrong entry.
type checkedGetter struct {
	ipld.NodeGetter
	mu     sync.Mutex
	shards map[cid.Cid]bool // linked as shards by shards checked
}

// checked returns ng checking HAMT shards, or ng if it does already.
func checked(ng ipld.NodeGetter) *checkedGetter {
	if g, ok := ng.(*checkedGetter); ok {
		return g
	}
	return &checkedGetter{NodeGetter: ng, shards: map[cid.Cid]bool{}}
}

func (g *checkedGetter) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	n, err := g.NodeGetter.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := g.check(n); err != nil {
		return nil, err
	}
	return n, nil
}

func (g *checkedGetter) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	in := g.NodeGetter.GetMany(ctx, cs)
	out := make(chan *ipld.NodeOption, len(cs))
	go func() {
		defer close(out)
		for o := range in {
			if o.Err == nil {
				if err := g.check(o.Node); err != nil {
					o = &ipld.NodeOption{Err: err}
				}
			}
			out <- o
		}
	}()
	return out
}

// check checks n if it is a HAMT shard, and that it is one if a shard
// checked before links it as one.
func (g *checkedGetter) check(n ipld.Node) error {
	g.mu.Lock()
	wantShard := g.shards[n.Cid()]
	g.mu.Unlock()
	var fsn *ft.FSNode
	pn, ok := n.(*mdag.ProtoNode)
	if ok {
		fsn, _ = ft.FSNodeFromBytes(pn.Data())
	}
	if fsn == nil || fsn.Type() != ft.THAMTShard {
		if wantShard {
			return fmt.Errorf("%s: %w: linked as a HAMT shard, and not one", n.Cid(), ErrMalformed)
		}
		return nil
	}
	shards, err := checkShard(pn, fsn)
	if err != nil {
		return err
	}
	g.mu.Lock()
	for _, c := range shards {
		g.shards[c] = true
	}
	g.mu.Unlock()
	return nil
}

// CheckPath tells whether the UnixFS path p ("CID/a/b") is malformed,
// reading only through ng: it resolves p, checking each HAMT shard on
// the way and, where p is a directory, each shard of it, and returns an
// error wrapping ErrMalformed if one does not hold together (or
// ErrBadName for a bad part of p). Any other failure (a block ng lacks)
// is not its to judge: it returns nil. The gateway, which resolves paths
// with boxo's code, asks it why boxo failed.
func CheckPath(ctx context.Context, ng ipld.NodeGetter, p string) error {
	root, parts, err := ParsePath(p)
	if err != nil {
		return nil
	}
	g := checked(ng)
	keep := func(err error) error {
		if errors.Is(err, ErrMalformed) || errors.Is(err, ErrBadName) {
			return err
		}
		return nil
	}
	n, err := resolve(ctx, g, root, parts)
	if err != nil {
		return keep(err)
	}
	if pn, ok := n.(*mdag.ProtoNode); ok {
		if fsn, err := ft.FSNodeFromBytes(pn.Data()); err == nil && fsn.Type() == ft.THAMTShard {
			dir, err := uio.NewDirectoryFromNode(dagOnly{g}, n)
			if err != nil {
				return keep(err)
			}
			_, err = dir.Links(ctx)
			return keep(err)
		}
	}
	return nil
}
