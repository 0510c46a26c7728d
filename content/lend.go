package content

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// A received message is read into a buffer lent from a pool, and its large
// blocks stay in it (bsread.go). The buffer goes back to the pool once
// nothing holds those blocks: every fetch it was posted to has handled it
// (stored the blocks it wanted, with no copy kept among the store's recent
// blocks) and bitswap has returned from it. Boxo's bitswap client keeps the
// blocks its sessions want and hands them on, so it never sees a lent
// block: one it wants at that moment is copied for it, and one it does not
// want is kept from it (a session that starts wanting it just after asks
// the network, as it would have anyway). A buffer that is never given back
// is only garbage: the pool is no promise, a block read after its buffer
// went back would be, so every path that is unsure does not give back.

// lentSize is the size of the lent buffers: a message of three 256 KiB
// chunks (bitswap's server is set to 768 KiB: it stops at the block that
// reaches it) and its framing, 786,5xx bytes. A larger message is read
// into a buffer of its own. (A MiB each held 10-20 MiB more at the peak
// of a 1 GiB fetch.)
const lentSize = 784 << 10

var lentBufs = sync.Pool{New: func() any { b := make([]byte, lentSize); return &b }}

// lentOut and lentBack count the buffers lent and given back, for tests.
var lentOut, lentBack atomic.Int64

// lent is a message's buffer, lent from lentBufs, and the count of those
// who hold blocks in it.
type lent struct {
	buf  *[]byte
	refs atomic.Int32
}

// lend returns a buffer of n bytes (n <= lentSize), held once.
func lend(n int) (*lent, []byte) {
	l := &lent{buf: lentBufs.Get().(*[]byte)}
	l.refs.Store(1)
	lentOut.Add(1)
	return l, (*l.buf)[:n]
}

// hold counts one more holder. A nil lent is a buffer of its own.
func (l *lent) hold() {
	if l != nil {
		l.refs.Add(1)
	}
}

// release counts one holder less; the last gives the buffer back.
func (l *lent) release() {
	if l == nil {
		return
	}
	if n := l.refs.Add(-1); n == 0 {
		lentBack.Add(1)
		lentBufs.Put(l.buf)
		l.buf = nil
	} else if n < 0 {
		panic("content: lent buffer released more often than held")
	}
}

// inLent reports whether b's bytes are in its message's buffer: decodeMessage
// leaves there the blocks of sharedBlockMin bytes or more, and copies out the
// rest.
func inLent(b blocks.Block) bool { return len(b.RawData()) >= sharedBlockMin }

// ownBlock returns a copy of b whose bytes are its own.
func ownBlock(b blocks.Block) blocks.Block {
	nb, err := blocks.NewBlockWithCid(bytes.Clone(b.RawData()), b.Cid())
	if err != nil {
		return b // cannot be: b's CID was checked against these bytes
	}
	if cb, ok := b.(checkedBlock); ok {
		return checkedBlock{Block: nb, crc: cb.crc}
	}
	return nb
}

// forBitswap returns m as bitswap's client and server may see it: its lent
// blocks copied if wants (the client's wantlist) holds them, and left out
// if not. The rest of the message is as it came.
func forBitswap(m bsmsg.BitSwapMessage, wants func() []cid.Cid) bsmsg.BitSwapMessage {
	blks := m.Blocks()
	any := false
	for _, b := range blks {
		if inLent(b) {
			any = true
			break
		}
	}
	if !any {
		return m
	}
	wanted := map[cid.Cid]bool{}
	if wants != nil {
		for _, c := range wants() {
			wanted[c] = true
		}
	}
	out := bsmsg.New(m.Full())
	for _, e := range m.Wantlist() {
		if e.Cancel {
			out.Cancel(e.Cid)
		} else {
			out.AddEntry(e.Cid, e.Priority, e.WantType, e.SendDontHave)
		}
	}
	for _, c := range m.Haves() {
		out.AddHave(c)
	}
	for _, c := range m.DontHaves() {
		out.AddDontHave(c)
	}
	out.SetPendingBytes(m.PendingBytes())
	for _, b := range blks {
		switch {
		case !inLent(b):
			out.AddBlock(b)
		case wanted[b.Cid()]:
			out.AddBlock(ownBlock(b))
		}
	}
	return out
}

// storeLent stores a block a fetch received, whose bytes may be in a lent
// buffer: into its pack with no copy kept (so the buffer can go back), and
// bitswap told of it as the block service would tell it, its client given
// a copy if it wants the block now (and not told otherwise: see above), or
// always, for a fetch a reader waits on (reader). A reader's bitswap
// session subscribes to a block before its wantlist shows it, and one
// that misses the block waits on the network: a get from a provider that
// sends a block per message ran at 40-70 MiB/s with copies only for what
// the wantlist showed, 310-360 with a copy always.
func (s *Service) storeLent(ctx context.Context, b blocks.Block, reader bool) error {
	if !s.store.raw.packable(len(b.RawData())) {
		// A store in memory keeps the bytes it is given.
		return s.bserv.AddBlock(ctx, ownBlock(b))
	}
	if err := s.store.raw.putPacked(ctx, b.Cid(), b.RawData(), checksum(b), false); err != nil {
		return err
	}
	// The server reads only the block's size, to queue it for the peers
	// that want it.
	if err := s.bswap.Server.NotifyNewBlocks(ctx, b); err != nil {
		return err
	}
	if reader {
		return s.bswap.Client.NotifyNewBlocks(ctx, ownBlock(b))
	}
	for _, c := range s.bswap.GetWantlist() {
		if c.Equals(b.Cid()) {
			return s.bswap.Client.NotifyNewBlocks(ctx, ownBlock(b))
		}
	}
	return nil
}
