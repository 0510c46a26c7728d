package content

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"sync"
	"testing"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetiface "github.com/ipfs/boxo/bitswap/network"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// streamNet is a bitswap network whose message senders are streams kept
// in memory: it counts the streams opened and checks that no two
// messages are ever written to one stream at once.
type streamNet struct {
	bsnetiface.BitSwapNetwork
	t *testing.T

	mu      sync.Mutex
	streams []*memStream
	gate    chan struct{} // if set, every send waits for it to close
	entered chan struct{} // told of every send that begins
	fail    bool          // the next send fails
}

type memStream struct {
	n      *streamNet
	busy   bool
	sent   int
	closed bool
}

func (n *streamNet) NewMessageSender(context.Context, peer.ID, *bsnetiface.MessageSenderOpts) (bsnetiface.MessageSender, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := &memStream{n: n}
	n.streams = append(n.streams, s)
	return s, nil
}

func (n *streamNet) Start(...bsnetiface.Receiver) {}

func (s *memStream) SendMsg(context.Context, bsmsg.BitSwapMessage) error {
	n := s.n
	n.mu.Lock()
	if s.busy {
		n.t.Error("two messages at once on one stream")
	}
	if s.closed {
		n.t.Error("a message on a reset stream")
	}
	s.busy = true
	gate, entered, fail := n.gate, n.entered, n.fail
	n.fail = false
	n.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	s.busy = false
	if fail {
		return errors.New("stream reset by peer")
	}
	s.sent++
	return nil
}

func (s *memStream) Reset() error {
	s.n.mu.Lock()
	s.closed = true
	s.n.mu.Unlock()
	return nil
}

func (s *memStream) SupportsHave() bool { return true }

func (n *streamNet) counts() (opened, open, sent int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range n.streams {
		if !s.closed {
			open++
		}
		sent += s.sent
	}
	return len(n.streams), open, sent
}

// TestSharedStreams checks that the messages bitswap's server sends a
// peer go down a few long-lived streams rather than one each.
func TestSharedStreams(t *testing.T) {
	ctx := context.Background()
	fake := &streamNet{t: t}
	w := newWatchedNet(fake, newTracer(func(peer.ID, int) {}, func(peer.ID, bsmsg.BitSwapMessage, *lent) {}))
	p, q := peer.ID("peer-p"), peer.ID("peer-q")

	for range 50 {
		if err := w.SendMessage(ctx, p, bsmsg.New(false)); err != nil {
			t.Fatal(err)
		}
	}
	if opened, _, sent := fake.counts(); opened != 1 || sent != 50 {
		t.Fatalf("50 messages in a row: %d streams opened, %d messages sent; want 1 and 50", opened, sent)
	}

	// Six senders at once: four streams carry four messages together, and
	// the other two wait for one of them.
	fake.mu.Lock()
	fake.gate, fake.entered = make(chan struct{}), make(chan struct{}, 6)
	fake.mu.Unlock()
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if err := w.SendMessage(ctx, p, bsmsg.New(false)); err != nil {
				t.Error(err)
			}
		})
	}
	for range streamsPerPeer {
		<-fake.entered
	}
	if opened, _, _ := fake.counts(); opened != streamsPerPeer {
		t.Fatalf("%d streams opened for concurrent messages, want %d", opened, streamsPerPeer)
	}
	close(fake.gate)
	wg.Wait()
	if opened, _, sent := fake.counts(); opened != streamsPerPeer || sent != 56 {
		t.Fatalf("after six concurrent messages: %d streams, %d messages; want %d and 56", opened, sent, streamsPerPeer)
	}
	fake.mu.Lock()
	fake.gate, fake.entered = nil, nil
	fake.fail = true
	fake.mu.Unlock()

	// A failed send closes its stream; the next send opens another.
	if err := w.SendMessage(ctx, p, bsmsg.New(false)); err == nil {
		t.Fatal("a failed send reported no error")
	}
	if _, open, _ := fake.counts(); open != streamsPerPeer-1 {
		t.Fatalf("%d streams open after a failure, want %d", open, streamsPerPeer-1)
	}
	for range 2 * streamsPerPeer {
		if err := w.SendMessage(ctx, p, bsmsg.New(false)); err != nil {
			t.Fatal(err)
		}
	}
	if opened, open, _ := fake.counts(); opened != streamsPerPeer+1 || open != streamsPerPeer {
		t.Fatalf("after the failure: %d opened, %d open; want %d and %d", opened, open, streamsPerPeer+1, streamsPerPeer)
	}

	// Another peer has streams of its own; a peer that leaves has its
	// streams closed, and gets new ones if it comes back.
	if err := w.SendMessage(ctx, q, bsmsg.New(false)); err != nil {
		t.Fatal(err)
	}
	leaveWatcher{Receiver: nopReceiver{}, w: w}.PeerDisconnected(p)
	if _, open, _ := fake.counts(); open != 1 {
		t.Fatalf("%d streams open after p left, want q's 1", open)
	}
	if err := w.SendMessage(ctx, p, bsmsg.New(false)); err != nil {
		t.Fatal(err)
	}
	w.forget(q)
	if _, open, _ := fake.counts(); open != 1 {
		t.Fatalf("%d streams open, want p's new one", open)
	}
}

type nopReceiver struct{ bsnetiface.Receiver }

func (nopReceiver) PeerDisconnected(peer.ID) {}

// TestServingStore checks that the blocks bitswap's server reads are the
// caller's own: sending a message gives their buffers to the next read,
// which must never change what the store holds, whether the block came
// from a pack, from the blocks appended lately, or from the records.
func TestServingStore(t *testing.T) {
	ctx := context.Background()
	for _, dir := range []string{"", t.TempDir()} {
		s, err := OpenStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		serving := servingStore{s.Blockstore(), s.raw}
		rng := rand.New(rand.NewSource(1))
		var want []blocks.Block
		for _, size := range []int{servedSize, servedSize - 100, 300, servedSize + 1} {
			data := make([]byte, size)
			rng.Read(data)
			b := blocks.NewBlock(data)
			if err := s.Blockstore().Put(ctx, b); err != nil {
				t.Fatal(err)
			}
			want = append(want, b)
		}
		idHash, _ := mh.Sum([]byte("inline"), mh.IDENTITY, -1)
		want = append(want, mustBlock(t, []byte("inline"), cid.NewCidV1(cid.Raw, idHash)))

		for round := range 2 {
			if round == 1 {
				if err := s.Sync(ctx); err != nil { // now read from the packs
					t.Fatal(err)
				}
			}
			m := bsmsg.New(false)
			pooled := 0
			for _, b := range want {
				got, err := serving.Get(ctx, b.Cid())
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.RawData(), b.RawData()) {
					t.Fatalf("%s: served bytes differ", b.Cid())
				}
				if _, ok := got.(servedBlock); ok {
					pooled++
				}
				m.AddBlock(got)
			}
			if pooled < 2 {
				t.Errorf("round %d: %d blocks in pooled buffers, want the two that fit", round, pooled)
			}
			recycle(m)
			for range 8 { // the next reads scribble over the recycled buffers
				for _, b := range m.Blocks() {
					if got, err := serving.Get(ctx, b.Cid()); err == nil {
						clear(got.RawData())
					}
				}
			}
			for _, b := range want {
				got, err := s.Blockstore().Get(ctx, b.Cid())
				if err != nil || !bytes.Equal(got.RawData(), b.RawData()) {
					t.Fatalf("round %d: %s changed in the store after a buffer went back (%v)", round, b.Cid(), err)
				}
			}
		}
	}
}

func mustBlock(t *testing.T, data []byte, c cid.Cid) blocks.Block {
	t.Helper()
	b, err := blocks.NewBlockWithCid(data, c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
