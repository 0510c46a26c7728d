package content_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	bsnetiface "github.com/ipfs/boxo/bitswap/network"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"

	"github.com/nubecloud/nube/nubetest"
)

// onceHaveNet is boxo's bitswap network with one change on the way in:
// a want-have a peer repeats for a CID within memory of the first is
// dropped unanswered, as Helia 7 does (it keeps a served want for 5 s).
// It also watches how deep the peer's requests run: how many blocks it
// has asked for and not yet been sent, at each block sent.
type onceHaveNet struct {
	bsnetiface.BitSwapNetwork
	memory time.Duration

	mu      sync.Mutex
	asked   map[peer.ID]map[cid.Cid]time.Time // want-haves answered, and when
	pending map[peer.ID]map[cid.Cid]bool      // want-blocks not yet served
	dropped int                               // repeated want-haves dropped
	served  map[peer.ID]*depth
}

// depth sums, over the blocks sent one peer, 1/(the blocks it had asked
// for and not yet had, that one included): the round trips the transfer
// would take on a link whose round trip is longer than the time to send
// a block. One block asked at a time counts a round trip each; a window
// of 64 counts 1/64 each.
type depth struct {
	blocks int
	rounds float64
	// again counts blocks sent the peer a second time (asked for by a
	// reader's session after the fetch had them): waste, but no round
	// trip of the transfer, so not counted in rounds.
	again int
	sent  map[cid.Cid]bool
}

func newOnceHaveNet(n bsnetiface.BitSwapNetwork, memory time.Duration) *onceHaveNet {
	return &onceHaveNet{
		BitSwapNetwork: n, memory: memory,
		asked:   map[peer.ID]map[cid.Cid]time.Time{},
		pending: map[peer.ID]map[cid.Cid]bool{},
		served:  map[peer.ID]*depth{},
	}
}

func (o *onceHaveNet) Start(rs ...bsnetiface.Receiver) {
	wrapped := make([]bsnetiface.Receiver, len(rs))
	for i, r := range rs {
		wrapped[i] = onceHaveReceiver{Receiver: r, o: o}
	}
	o.BitSwapNetwork.Start(wrapped...)
}

func (o *onceHaveNet) SendMessage(ctx context.Context, p peer.ID, m bsmsg.BitSwapMessage) error {
	o.sending(p, m)
	return o.BitSwapNetwork.SendMessage(ctx, p, m)
}

func (o *onceHaveNet) NewMessageSender(ctx context.Context, p peer.ID, opts *bsnetiface.MessageSenderOpts) (bsnetiface.MessageSender, error) {
	ms, err := o.BitSwapNetwork.NewMessageSender(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	return onceHaveSender{MessageSender: ms, o: o, p: p}, nil
}

type onceHaveSender struct {
	bsnetiface.MessageSender
	o *onceHaveNet
	p peer.ID
}

func (s onceHaveSender) SendMsg(ctx context.Context, m bsmsg.BitSwapMessage) error {
	s.o.sending(s.p, m)
	return s.MessageSender.SendMsg(ctx, m)
}

// sending counts the blocks of m against what p has asked for.
func (o *onceHaveNet) sending(p peer.ID, m bsmsg.BitSwapMessage) {
	o.mu.Lock()
	defer o.mu.Unlock()
	pend := o.pending[p]
	d := o.served[p]
	if d == nil {
		d = &depth{sent: map[cid.Cid]bool{}}
		o.served[p] = d
	}
	for _, b := range m.Blocks() {
		if d.sent[b.Cid()] {
			d.again++
			delete(pend, b.Cid())
			continue
		}
		if !pend[b.Cid()] {
			continue
		}
		d.sent[b.Cid()] = true
		d.blocks++
		d.rounds += 1 / float64(len(pend))
		delete(pend, b.Cid())
	}
}

// filter drops the want-haves p repeats within memory and notes its
// want-blocks and cancels.
func (o *onceHaveNet) filter(p peer.ID, m bsmsg.BitSwapMessage) bsmsg.BitSwapMessage {
	o.mu.Lock()
	defer o.mu.Unlock()
	asked := o.asked[p]
	if asked == nil {
		asked = map[cid.Cid]time.Time{}
		o.asked[p] = asked
	}
	pend := o.pending[p]
	if pend == nil {
		pend = map[cid.Cid]bool{}
		o.pending[p] = pend
	}
	now := time.Now()
	out := bsmsg.New(m.Full())
	for _, e := range m.Wantlist() {
		switch {
		case e.Cancel:
			delete(pend, e.Cid)
			out.Cancel(e.Cid)
			continue
		case e.WantType == pb.Message_Wantlist_Have:
			if at, ok := asked[e.Cid]; ok && now.Sub(at) < o.memory {
				o.dropped++
				continue
			}
			asked[e.Cid] = now
		default:
			if d := o.served[p]; d == nil || !d.sent[e.Cid] {
				pend[e.Cid] = true
			}
		}
		out.AddEntry(e.Cid, e.Priority, e.WantType, e.SendDontHave)
	}
	for _, b := range m.Blocks() {
		out.AddBlock(b)
	}
	for _, c := range m.Haves() {
		out.AddHave(c)
	}
	for _, c := range m.DontHaves() {
		out.AddDontHave(c)
	}
	return out
}

func (o *onceHaveNet) depth(p peer.ID) depth {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d := o.served[p]; d != nil {
		return *d
	}
	return depth{}
}

func (o *onceHaveNet) droppedHaves() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped
}

type onceHaveReceiver struct {
	bsnetiface.Receiver
	o *onceHaveNet
}

func (r onceHaveReceiver) ReceiveMessage(ctx context.Context, p peer.ID, m bsmsg.BitSwapMessage) {
	r.Receiver.ReceiveMessage(ctx, p, r.o.filter(p, m))
}

// TestGetFromOnceHaveProvider fetches a file from a provider that, like
// Helia 7, answers a peer's want-have for a CID once and ignores it when
// repeated within 5 s: `get` (a Stat that resolves the root, then a read)
// must not fall back to one block a round trip while its DAG fetch waits
// for an answer that never comes. It compares the round trips the
// provider saw for a get and for a pin of the same file (64 MiB, as the
// issue measured), each by a node of its own. The goal is 0.8 of pin's
// speed, which runs read 0.77-1.25 of, the count varying with how the
// fetch's wants happen to batch; the test holds get to 0.5 (twice pin's
// round trips, and one more for its Stat: a pin resolves no path), which
// no run of the fixed code missed and the stall (0.12) is far below, so
// it fails on the bug and not on the batching's luck. Its log prints the
// figure beside the goal.
func TestGetFromOnceHaveProvider(t *testing.T) {
	size := 64 << 20
	if testing.Short() {
		size = 32 << 20 // at 16 MiB a round trip more or less is 10%
	}
	ctx := nubetest.Context(t, 2*time.Minute)
	data := randomBytes(size, 42)
	src := nubetest.Cluster(t, 1).Node(0)
	root, err := src.Add(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}

	// The provider: a bare host with boxo's bitswap over a copy of the
	// blocks, its network wrapped as above.
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	store := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	copyBlocks(t, ctx, src, store)
	net := newOnceHaveNet(bsnet.NewFromIpfsHost(h), 5*time.Second)
	bs := bitswap.New(ctx, net, nil, store)
	defer bs.Close()
	provider := peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}

	fetcher := func() *nube.Node {
		n := nubetest.Cluster(t, 1).Node(0)
		if err := n.Sys().Host().Connect(ctx, provider); err != nil {
			t.Fatal(err)
		}
		return n
	}
	type run struct {
		d    depth
		secs float64
	}
	measure := func(name string, n *nube.Node, fetch func() error) run {
		start := time.Now()
		if err := fetch(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r := run{d: net.depth(n.ID()), secs: time.Since(start).Seconds()}
		t.Logf("%s: %d blocks in %.1f round trips (%.1f blocks a round trip), %d sent twice, %.1f MiB/s",
			name, r.d.blocks, r.d.rounds, float64(r.d.blocks)/r.d.rounds, r.d.again, float64(size)/(1<<20)/r.secs)
		return r
	}

	pinner := fetcher()
	pin := measure("pin add", pinner, func() error { return pinner.Content().Pin(ctx, root, "", nil) })

	getter := fetcher()
	get := measure("get", getter, func() error {
		// As the daemon's get: describe the path, then read the file.
		if _, err := getter.Content().Stat(ctx, root.String()); err != nil {
			return err
		}
		f, err := getter.Get(ctx, root)
		if err != nil {
			return err
		}
		defer f.Close()
		if n, sum := readAllHash(t, f); n != int64(size) || sum != sha256.Sum256(data) {
			t.Fatalf("get read %d bytes that differ from the %d added", n, size)
		}
		return nil
	})
	dropped := net.droppedHaves()
	t.Logf("repeated want-haves the provider left unanswered: %d", dropped)

	if pin.d.blocks == 0 || get.d.blocks == 0 {
		t.Fatalf("the provider served %d blocks to the pin and %d to the get", pin.d.blocks, get.d.blocks)
	}
	// The DAG fetch starts with the peer that served the root: it has
	// no need to ask it again.
	if dropped != 0 {
		t.Errorf("the get asked the provider %d times again for what it had answered", dropped)
	}
	ratio := pin.d.rounds / get.d.rounds
	t.Logf("get at %.2f of pin add by round trips, %.2f with the Stat's aside (%.2f by the clock, not asserted)",
		ratio, pin.d.rounds/(get.d.rounds-1), pin.secs/get.secs)
	if get.d.rounds-1 > pin.d.rounds/0.5 {
		t.Errorf("get took %.1f round trips to pin add's %.1f: %.2f of pin's speed, want >= 0.5 (the goal is 0.8)", get.d.rounds, pin.d.rounds, ratio)
	}
}
