package content

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetiface "github.com/ipfs/boxo/bitswap/network"
	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
)

// watchedNet is bitswap's network with two changes. Our tracer sees every
// message we send (bitswap's own tracer sees only what its server sends).
// And the messages sent with SendMessage, which are all the blocks
// bitswap's server sends, go down a few long-lived streams per peer: boxo
// opens a stream for each, which for a fetch of a GiB is more than a
// thousand streams, each negotiated and each starting with a small yamux
// window (RATIONALE.md, Blocks).
type watchedNet struct {
	bsnetiface.BitSwapNetwork
	t *tracer

	mu      sync.Mutex
	senders map[peer.ID]*peerSenders

	// Set by receiveOn (bsread.go) for a network on a real host: the
	// host whose bitswap streams this network reads itself, and the
	// event manager boxo's network was made with. receivers are set by
	// Start.
	host      host.Host
	events    *bsnetiface.ConnectEventManager
	receivers []bsnetiface.Receiver
	read      atomic.Uint64 // messages read by handleStream
	// wants is bitswap's client's wantlist: a lent block it holds is
	// copied for the client, one it does not is kept from it (lend.go).
	wants func() []cid.Cid
}

func newWatchedNet(n bsnetiface.BitSwapNetwork, t *tracer) *watchedNet {
	return &watchedNet{BitSwapNetwork: n, t: t, senders: map[peer.ID]*peerSenders{}}
}

// peerSenders are the streams to one peer: a few, so that the peer
// decodes and hashes messages on more than one core, and so that a
// message waits on no more than a stream's window (yamux grows a window
// only when the round trip is long against the data, never on loopback).
type peerSenders struct {
	s    [streamsPerPeer]peerSender
	next atomic.Uint32
	gone atomic.Bool // the peer is gone: close the streams when done
}

const streamsPerPeer = 4

// peerSender is one stream to a peer. Its lock is held for a whole
// message, so that two messages never interleave on the stream.
type peerSender struct {
	mu sync.Mutex
	ms bsnetiface.MessageSender // nil until the first send, and after a failure
}

// streamOpts are those of the shared streams: one retry on a new stream,
// soon, so that a stream the peer has closed costs no message; and the
// time a 768 KiB message takes at 100 kbit/s, as boxo gives its own
// per-message streams.
var streamOpts = bsnetiface.MessageSenderOpts{
	MaxRetries:       2,
	SendTimeout:      70 * time.Second,
	SendErrorBackoff: 10 * time.Millisecond,
}

// SendMessage sends m to p down one of the streams this node keeps to p,
// opening it if need be.
func (w *watchedNet) SendMessage(ctx context.Context, p peer.ID, m bsmsg.BitSwapMessage) error {
	w.t.sent(m)
	w.mu.Lock()
	ss := w.senders[p]
	if ss == nil {
		ss = &peerSenders{}
		w.senders[p] = ss
	}
	w.mu.Unlock()

	ps := ss.take()
	err := ps.send(ctx, w.BitSwapNetwork, p, m)
	ps.mu.Unlock()
	// Written or not, the message is done with: bitswap's server sends it
	// once and reads only its blocks' sizes after.
	recycle(m)
	// forget may have found the lock held: whoever holds it last closes.
	if ss.gone.Load() && ps.mu.TryLock() {
		ps.reset()
		ps.mu.Unlock()
	}
	return err
}

// take returns the first stream not in use, locked, so that a peer sent
// one message at a time has one stream; or, with all in use, waits for
// one of them in turn.
func (ss *peerSenders) take() *peerSender {
	for i := range ss.s {
		if ps := &ss.s[i]; ps.mu.TryLock() {
			return ps
		}
	}
	ps := &ss.s[int(ss.next.Add(1))%len(ss.s)]
	ps.mu.Lock()
	return ps
}

// send writes m to the stream, opening one first if there is none. It is
// called with ps.mu held.
func (ps *peerSender) send(ctx context.Context, n bsnetiface.BitSwapNetwork, p peer.ID, m bsmsg.BitSwapMessage) error {
	if ps.ms == nil {
		ms, err := n.NewMessageSender(ctx, p, &streamOpts)
		if err != nil {
			return err
		}
		ps.ms = ms
	}
	if err := ps.ms.SendMsg(ctx, m); err != nil {
		ps.reset()
		return err
	}
	return nil
}

// reset closes the stream, if any. It is called with ps.mu held.
func (ps *peerSender) reset() {
	if ps.ms != nil {
		_ = ps.ms.Reset()
		ps.ms = nil
	}
}

// forget closes the streams to p, now for those no message is on its
// way down, or once it is sent.
func (w *watchedNet) forget(p peer.ID) {
	w.mu.Lock()
	ss := w.senders[p]
	delete(w.senders, p)
	w.mu.Unlock()
	if ss != nil {
		ss.close()
	}
}

// close closes the streams, now or when the message on its way down each
// is sent.
func (ss *peerSenders) close() {
	ss.gone.Store(true)
	for i := range ss.s {
		if ps := &ss.s[i]; ps.mu.TryLock() {
			ps.reset()
			ps.mu.Unlock()
		}
	}
}

// Start starts the network with receivers that also see a peer leave, so
// that its stream is closed; and, on a real host, takes over reading the
// messages peers send (bsread.go).
func (w *watchedNet) Start(rs ...bsnetiface.Receiver) {
	wrapped := make([]bsnetiface.Receiver, len(rs))
	for i, r := range rs {
		wrapped[i] = leaveWatcher{Receiver: r, w: w}
	}
	w.receivers = wrapped
	w.BitSwapNetwork.Start(wrapped...)
	if w.host != nil {
		for _, proto := range bitswapProtocols {
			w.host.SetStreamHandler(proto, w.handleStream)
		}
	}
}

// Stop closes every stream and stops the network.
func (w *watchedNet) Stop() {
	w.mu.Lock()
	all := w.senders
	w.senders = map[peer.ID]*peerSenders{}
	w.mu.Unlock()
	for _, ss := range all {
		ss.close()
	}
	w.BitSwapNetwork.Stop()
}

type leaveWatcher struct {
	bsnetiface.Receiver
	w *watchedNet
}

func (l leaveWatcher) PeerDisconnected(p peer.ID) {
	l.w.forget(p)
	l.Receiver.PeerDisconnected(p)
}

func (w *watchedNet) NewMessageSender(ctx context.Context, p peer.ID, opts *bsnetiface.MessageSenderOpts) (bsnetiface.MessageSender, error) {
	ms, err := w.BitSwapNetwork.NewMessageSender(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	return watchedSender{ms, w.t}, nil
}

type watchedSender struct {
	bsnetiface.MessageSender
	t *tracer
}

func (w watchedSender) SendMsg(ctx context.Context, m bsmsg.BitSwapMessage) error {
	w.t.sent(m)
	return w.MessageSender.SendMsg(ctx, m)
}

// servingStore is the store as bitswap sees it. Its Get reads a block
// into a buffer from a pool, which SendMessage gives back once the
// message is written: a node serving a GiB would otherwise allocate a
// GiB, and collect it (RATIONALE.md, Blocks). Blocks it hands out that
// never reach SendMessage are collected as any other.
type servingStore struct {
	blockstore.Blockstore
	raw *blockStore
}

// servedSize is the size of the pooled buffers: a default chunk. Larger
// blocks are read into buffers of their own.
const servedSize = 256 << 10

var servedBufs = sync.Pool{New: func() any { b := make([]byte, servedSize); return &b }}

// servedBlock is a block read into a pooled buffer.
type servedBlock struct {
	*blocks.BasicBlock
	buf *[]byte
}

func (s servingStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if c.Prefix().MhType == multihash.IDENTITY {
		return s.Blockstore.Get(ctx, c)
	}
	buf := servedBufs.Get().(*[]byte)
	data, err := s.raw.readInto(ctx, c, *buf)
	if err != nil {
		servedBufs.Put(buf)
		return nil, err
	}
	b, err := blocks.NewBlockWithCid(data, c)
	if err != nil || cap(data) != servedSize || &data[:1][0] != &(*buf)[0] {
		servedBufs.Put(buf) // read into a buffer of its own
		return b, err
	}
	return servedBlock{BasicBlock: b, buf: buf}, nil
}

// recycle gives the pooled buffers of m's blocks back. m must not be used
// after.
func recycle(m bsmsg.BitSwapMessage) {
	for _, b := range m.Blocks() {
		if sb, ok := b.(servedBlock); ok {
			servedBufs.Put(sb.buf)
		}
	}
}
