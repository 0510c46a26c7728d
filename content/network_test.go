package content_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"go.uber.org/goleak"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/nubetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, nubetest.LeakOptions()...)
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// readAllHash streams f and returns its length and SHA-256.
func readAllHash(t testing.TB, f io.Reader) (int64, [32]byte) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return n, sum
}

// TestFetchFromFourProviders adds 64 MiB on one node of five, pins it on
// three more (so four provide it), and fetches it on the fifth: the bytes
// match, and every provider served part of them.
func TestFetchFromFourProviders(t *testing.T) {
	size := 64 << 20
	if testing.Short() {
		size = 16 << 20
	}
	c := nubetest.Cluster(t, 5)
	ctx := nubetest.Context(t, 2*time.Minute)
	data := randomBytes(size, 1)
	root, err := c.Node(0).Add(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if err := c.Node(i).Content().Pin(ctx, root, "", nil); err != nil {
			t.Fatalf("node %d pin: %v", i, err)
		}
	}
	f, err := c.Node(4).Get(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Size() != uint64(size) {
		t.Fatalf("size %d, want %d", f.Size(), size)
	}
	n, sum := readAllHash(t, f)
	if n != int64(size) || sum != sha256.Sum256(data) {
		t.Fatalf("fetched %d bytes that differ from the %d added", n, size)
	}
	fetcher := c.Node(4).ID()
	var total int64
	for i := 0; i < 4; i++ {
		sent := c.Node(i).Content().Sent(fetcher)
		t.Logf("provider %d sent %.1f MiB", i, float64(sent)/(1<<20))
		if sent < content.ChunkSize {
			t.Errorf("provider %d served less than one block", i)
		}
		total += sent
	}
	if total < int64(size) {
		t.Errorf("providers sent %d bytes in all, less than the file", total)
	}
}

// TestGetStreams shows that Get streams: with the file's last block gone
// from the only provider, the first bytes still arrive, and reading on
// ends with an error that names the missing content once the deadline
// passes.
func TestGetStreams(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, time.Minute)
	data := randomBytes(4*content.ChunkSize, 2)
	root, err := c.Node(0).Add(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// Drop the last chunk from the provider.
	last, err := c.Node(0).Content().Add(ctx, bytes.NewReader(data[3*content.ChunkSize:]), content.AddOptions{NoPin: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Node(0).Content().(*content.Service).Store().Blockstore().DeleteBlock(ctx, last); err != nil {
		t.Fatal(err)
	}
	gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	f, err := c.Node(1).Get(gctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	first := make([]byte, content.ChunkSize)
	if _, err := io.ReadFull(f, first); err != nil {
		t.Fatalf("first chunk: %v", err)
	}
	if !bytes.Equal(first, data[:content.ChunkSize]) {
		t.Fatal("first chunk differs")
	}
	if _, err := io.Copy(io.Discard, f); err == nil {
		t.Fatal("read the whole file although its last block exists nowhere")
	}
}

// TestFetchAfterReconnect fetches from a provider that keeps streams to
// the fetcher (a few per peer, for the blocks it sends), after the
// connection between them closed and after the fetcher restarted: the
// provider's old streams are gone with the connection, and it must open
// new ones rather than fail or stall.
func TestFetchAfterReconnect(t *testing.T) {
	c := nubetest.Cluster(t, 2, nubetest.WithDataDirs())
	ctx := nubetest.Context(t, 2*time.Minute)
	var files [][]byte
	var roots []cid.Cid
	for i := range 3 {
		data := randomBytes(24*content.ChunkSize, int64(10+i)) // some messages at once
		root, err := c.Node(0).Add(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		files, roots = append(files, data), append(roots, root)
	}
	fetch := func(n *nube.Node, i int) {
		t.Helper()
		f, err := n.Get(ctx, roots[i])
		if err != nil {
			t.Fatalf("file %d: %v", i, err)
		}
		defer f.Close()
		got, err := io.ReadAll(f)
		if err != nil || !bytes.Equal(got, files[i]) {
			t.Fatalf("file %d: %d bytes, %v", i, len(got), err)
		}
	}
	fetch(c.Node(1), 0)

	if err := c.Disconnect(0, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx, 1, 0); err != nil {
		t.Fatal(err)
	}
	fetch(c.Node(1), 1)

	n, err := c.Restart(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConnected(ctx, 1, 0); err != nil {
		t.Fatal(err)
	}
	fetch(n, 2)
}

// TestFetchWithNoProvider fails with ErrNoProvider once the deadline
// passes, instead of hanging.
func TestFetchWithNoProvider(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, time.Minute)
	// A CID nobody has: the hash of some bytes never added.
	other, err := nubetest.Cluster(t, 1).Node(0).Content().Add(ctx, bytes.NewReader([]byte("nobody here has me")), content.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = c.Node(1).Get(fctx, other)
	if !errors.Is(err, content.ErrNoProvider) {
		t.Fatalf("err = %v, want ErrNoProvider", err)
	}
	t.Log(err)
}

// lyingStore serves every block with its first byte flipped, under the
// block's true CID: a provider that corrupts what it sends.
type lyingStore struct{ blockstore.Blockstore }

func (l lyingStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	b, err := l.Blockstore.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	data := bytes.Clone(b.RawData())
	if len(data) > 0 {
		data[0] ^= 0xff
	} else {
		data = []byte{0}
	}
	return blocks.NewBlockWithCid(data, c)
}

// TestLyingProvider fetches from a provider that corrupts every block it
// sends: the fetcher drops it, finishes from an honest provider, and stores
// nothing corrupt.
func TestLyingProvider(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, time.Minute)
	honest, fetcher := c.Node(0), c.Node(1)
	c.Disconnect(0, 1)
	data := randomBytes(8*content.ChunkSize, 3)
	root, err := honest.Add(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}

	// The liar: a bare libp2p host with bitswap over a copy of the
	// honest node's blocks, served corrupted.
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	copyStore := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	copyBlocks(t, ctx, honest, copyStore)
	liar := bitswap.New(ctx, bsnet.NewFromIpfsHost(h), nil, lyingStore{copyStore})
	defer liar.Close()

	// The fetcher meets only the liar at first.
	if err := fetcher.Sys().Host().Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	f, err := fetcher.Get(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type result struct {
		n   int64
		sum []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		h := sha256.New()
		n, err := io.Copy(h, f)
		done <- result{n, h.Sum(nil), err}
	}()
	// The liar's blocks hash to CIDs nobody asked for: they are dropped
	// and counted. No event reports them, so poll.
	nubetest.Eventually(t, ctx, func() bool {
		return stat(fetcher.Content(), h.ID()).Unrequested > 0
	}, func() string { return "the liar's blocks were never counted as unrequested" })
	// Now an honest provider turns up; the fetch finishes from it.
	if _, err := fetcher.Connect(ctx, honest.Addrs()[0].String()); err != nil {
		t.Fatal(err)
	}
	r := <-done
	want := sha256.Sum256(data)
	if r.err != nil {
		t.Fatalf("fetch: %v", r.err)
	}
	if r.n != int64(len(data)) || !bytes.Equal(r.sum, want[:]) {
		t.Fatalf("fetched %d bytes that differ from the %d added", r.n, len(data))
	}
	v, err := fetcher.Content().Verify(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Bad) > 0 || v.Checked == 0 {
		t.Fatalf("fetcher's store: %d blocks checked, %d bad", v.Checked, len(v.Bad))
	}
	// Nothing of the liar's was taken. It is not banned: a block that
	// matches no want proves nothing (see TestUnrequestedBlocks).
	if st := stat(fetcher.Content(), h.ID()); st.Blocks != 0 {
		t.Errorf("the fetcher took %d blocks from the liar", st.Blocks)
	}
	if fetcher.Sys().Banned(h.ID()) {
		t.Error("the liar was banned without proof")
	}
}

// stat returns what p has sent s.
func stat(s nube.Content, p peer.ID) content.PeerStat {
	for _, st := range s.Received() {
		if st.Peer == p {
			return st
		}
	}
	return content.PeerStat{Peer: p}
}

// TestUnrequestedBlocks has a peer send valid blocks the node never asked
// for, as an honest provider does when it answers the wants a node sent
// before it was killed and restarted. The node drops and counts them, and
// keeps the peer: it was once banned for this, and then could not reach
// the provider it had been downloading from.
func TestUnrequestedBlocks(t *testing.T) {
	n := nubetest.Cluster(t, 1).Node(0)
	ctx := nubetest.Context(t, time.Minute)
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Connect(ctx, peer.AddrInfo{ID: n.ID(), Addrs: n.Sys().Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	m := bsmsg.New(false)
	for i := range 3 {
		m.AddBlock(blocks.NewBlock(randomBytes(1000, int64(i))))
	}
	st, err := h.NewStream(ctx, n.ID(), "/ipfs/bitswap/1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ToNetV1(st); err != nil {
		t.Fatal(err)
	}
	st.Close()
	nubetest.Eventually(t, ctx, func() bool {
		return stat(n.Content(), h.ID()).Unrequested == 3
	}, func() string { return "the unrequested blocks were never counted" })
	if n.Sys().Banned(h.ID()) {
		t.Fatal("the peer was banned for sending valid blocks nobody asked for")
	}
	if _, err := n.Ping(ctx, h.ID()); err != nil {
		t.Fatalf("ping the peer after its unrequested blocks: %v", err)
	}
	for _, b := range m.Blocks() {
		if has, _ := n.Content().Has(ctx, b.Cid()); has {
			t.Fatal("an unrequested block was stored")
		}
	}
}

// TestConcurrentFetchesOfOneDAG pins one DAG several times at once on one
// node, with a reader of it under way too, as concurrent service runs of
// one module do. Two schedules of the same blocks used to cancel each
// other's requests and could wait for ever; now they take turns.
func TestConcurrentFetchesOfOneDAG(t *testing.T) {
	c := nubetest.Cluster(t, 3)
	ctx := nubetest.Context(t, time.Minute)
	data := randomBytes(40*content.ChunkSize, 21)
	root, err := c.Node(0).Add(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	n := c.Node(1)
	errs := make(chan error, 5)
	for i := range 4 {
		go func() { errs <- n.Content().Pin(ctx, root, fmt.Sprintf("pin %d", i), nil) }()
	}
	go func() {
		f, err := n.Get(ctx, root)
		if err == nil {
			var got []byte
			got, err = io.ReadAll(f)
			f.Close()
			if err == nil && !bytes.Equal(got, data) {
				err = fmt.Errorf("read %d bytes that differ from the %d added", len(got), len(data))
			}
		}
		errs <- err
	}()
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestFetchAsksAgain has the fetcher's question to its only provider lost
// (the provider's bitswap resets the stream unread), as a loaded link
// loses one. The fetcher asks again and finishes: it once marked the peer
// as asked for ever and waited until its context ended.
func TestFetchAsksAgain(t *testing.T) {
	fetcher := nubetest.Cluster(t, 1).Node(0)
	ctx := nubetest.Context(t, time.Minute)
	data := randomBytes(3*content.ChunkSize, 5)
	// The provider is a bare host, so that nothing but the fetcher's own
	// questions can bring the two together (no DHT knows it).
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	src := nubetest.Cluster(t, 1).Node(0)
	root, err := src.Add(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	store := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	copyBlocks(t, ctx, src, store)

	lost := make(chan struct{})
	var once sync.Once
	for _, proto := range []protocol.ID{bsnet.ProtocolBitswap, bsnet.ProtocolBitswapOneOne, bsnet.ProtocolBitswapOneZero, bsnet.ProtocolBitswapNoVers} {
		h.SetStreamHandler(proto, func(s network.Stream) {
			s.Reset()
			once.Do(func() { close(lost) })
		})
	}
	if err := fetcher.Sys().Host().Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fetcher.Content().Pin(ctx, root, "", nil) }()
	select {
	case <-lost:
	case err := <-done:
		t.Fatalf("the fetch ended before it asked the provider: %v", err)
	case <-ctx.Done():
		t.Fatal("the fetcher never asked the provider")
	}
	// Now the provider serves for real: bitswap takes over its handlers.
	bs := bitswap.New(ctx, bsnet.NewFromIpfsHost(h), nil, store)
	defer bs.Close()
	if err := <-done; err != nil {
		t.Fatalf("fetch after a lost question: %v", err)
	}
	f, err := fetcher.Get(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, sum := readAllHash(t, f); n != int64(len(data)) || sum != sha256.Sum256(data) {
		t.Fatalf("fetched %d bytes that differ from the %d added", n, len(data))
	}
}

// copyBlocks copies every block n stores into bs. Keys come back as raw
// CIDs; the blockstore keys by multihash, so any codec finds them.
func copyBlocks(t *testing.T, ctx context.Context, n *nube.Node, bs blockstore.Blockstore) {
	t.Helper()
	own := n.Content().(*content.Service).Store().Blockstore()
	keys, err := own.AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		b, err := own.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := bs.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
}
