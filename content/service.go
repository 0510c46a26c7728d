package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/bitswap"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetiface "github.com/ipfs/boxo/bitswap/network"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	bsserver "github.com/ipfs/boxo/bitswap/server"
	"github.com/ipfs/boxo/blockservice"
	mdag "github.com/ipfs/boxo/ipld/merkledag"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/boxo/verifcid"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/multiformats/go-multicodec"
)

// Defaults for Config.
const (
	DefaultReprovideInterval = 12 * time.Hour
)

// Config configures a Service.
type Config struct {
	// Host carries bitswap. Required.
	Host host.Host
	// Routing finds providers and announces ours (the node's DHT). Nil
	// means content moves only between connected peers.
	Routing routing.ContentRouting
	// Public is a second routing system, looked up beside Routing and
	// told of the same content on an announcement queue of its own: the
	// IPFS public DHT. Nil means none.
	Public routing.ContentRouting
	// Store holds the blocks. Required.
	Store *Store
	// ProvideAll announces every block of pinned content, not only the
	// roots, so peers can fetch a sub-tree by its own CID.
	ProvideAll bool
	// ReprovideInterval is how often pinned content is announced again
	// (DHT provider records expire). Zero means DefaultReprovideInterval.
	ReprovideInterval time.Duration
	// Logger receives the layer's logs. Nil means no logs: a library is silent unless given a logger.
	Logger *slog.Logger
}

// Validate reports a missing or nonsensical field of c, naming it.
func (c Config) Validate() error {
	switch {
	case c.Host == nil:
		return errors.New("content: Config.Host is required")
	case c.Store == nil:
		return errors.New("content: Config.Store is required")
	case c.ReprovideInterval < 0:
		return fmt.Errorf("content: Config.ReprovideInterval is negative (%v): want 0 for the default, or more", c.ReprovideInterval)
	}
	return nil
}

// Service puts a Store on the network: it adds content, fetches it from
// every provider it can find, pins it and announces it. It is safe for
// concurrent use.
type Service struct {
	cfg   Config
	log   *slog.Logger
	store *Store
	bswap *bitswap.Bitswap
	bserv blockservice.BlockService
	dag   ipld.DAGService // reads through the network
	local ipld.DAGService // this node's store only
	trace *tracer
	net   *watchedNet

	fetchMu     sync.Mutex
	fetches     map[*fetch]struct{}
	servers     servedBy                  // who served the blocks of paths resolved
	flights     map[cid.Cid]chan struct{} // roots being fetched; closed when done
	searchDelay time.Duration             // before a fetch asks the DHT

	routing    eitherRouting // Routing and Public, those set
	announcers []*announcer  // one per routing system
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// New starts bitswap on cfg.Host and the announcing of pinned content. ctx
// bounds the start only; the service runs until Close.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReprovideInterval <= 0 {
		cfg.ReprovideInterval = DefaultReprovideInterval
	}
	s := &Service{
		cfg:         cfg,
		log:         cfg.Logger.With("layer", "content"),
		store:       cfg.Store,
		fetches:     map[*fetch]struct{}{},
		flights:     map[cid.Cid]chan struct{}{},
		searchDelay: time.Second,
		routing:     routers(cfg),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.trace = newTracer(s.onUnrequested, s.deliver)
	var finder routing.ContentDiscovery
	if len(s.routing) > 0 {
		finder = s.routing
	}
	events := bsnetiface.NewConnectEventManager()
	s.net = newWatchedNet(bsnet.NewFromIpfsHost(cfg.Host, bsnet.WithConnectEventManager(events)), s.trace)
	s.net.receiveOn(cfg.Host, events)
	// Bitswap starts reading before New returns: until s.bswap is set,
	// its client wants nothing.
	var bsw atomic.Pointer[bitswap.Bitswap]
	s.net.wants = func() []cid.Cid {
		if b := bsw.Load(); b != nil {
			return b.GetWantlist()
		}
		return nil
	}
	// No bitswap tracer: the network hands every message it reads to
	// s.trace itself, before bitswap (bsread.go).
	s.bswap = bitswap.New(s.ctx, s.net, finder, servingStore{s.store.Blockstore(), s.store.raw},
		// Let a peer have up to 16 MiB of blocks on the way (bitswap's
		// default is 1 MiB: four chunks, too few to fill a fast link;
		// 16 MiB is a fetcher's full window of 64 chunks).
		bitswap.WithServerOption(bsserver.MaxOutstandingBytesPerPeer(16<<20)),
		// Send them in messages of three chunks, 768 KiB, rather than
		// bitswap's 16 KiB (a chunk each): each message costs both nodes
		// CPU of its own, and one-chunk messages cost a fetch more CPU on
		// each node (RATIONALE.md, Blocks). Not four: the
		// fetching node reads each message into a pooled buffer of the
		// next power of two, and four chunks and their framing take a
		// 2 MiB buffer where three take 1 MiB.
		bitswap.WithServerOption(bsserver.WithTargetMessageSize(768<<10)),
		// Bitswap would look every received block up in the store only
		// to count duplicates, which nothing here reads.
		bitswap.WithoutDuplicatedBlockStats(),
	)
	bsw.Store(s.bswap)
	// WriteThrough: the store's Put looks a block up itself before it
	// writes it; the block service need not look first as well.
	s.bserv = blockservice.New(s.store.Blockstore(), s.bswap, blockservice.WriteThrough(true))
	s.dag = mdag.NewDAGService(s.bserv)
	s.local = mdag.NewDAGService(blockservice.New(s.store.Blockstore(), nil))
	for _, r := range s.routing {
		a := &announcer{s: s, r: r, q: make(chan cid.Cid, 1024)}
		s.announcers = append(s.announcers, a)
		s.wg.Add(1)
		go a.run()
	}
	return s, nil
}

// Close stops bitswap and the announcing. It does not close the Store.
func (s *Service) Close() error {
	s.cancel()
	err := s.bswap.Close()
	s.wg.Wait()
	return err
}

// Store returns the local store.
func (s *Service) Store() *Store { return s.store }

// BlockService returns the store with bitswap behind it: a block the
// store lacks is asked of the network, one block at a time (Get and Fetch
// walk ahead of their readers; this does not).
func (s *Service) BlockService() blockservice.BlockService { return s.bserv }

// DAG returns the DAG service that reads through the network.
func (s *Service) DAG() ipld.DAGService { return s.dag }

// onUnrequested notes a peer that sent blocks this node did not ask for.
// Bitswap has already dropped them. It is no proof of lying, so nobody is
// cut off for it: bitswap derives a block's CID from its bytes, so a block
// can never disagree with the CID it comes under, and a corrupted block
// looks exactly like an honest one that nobody wants now: the answer to a
// want that was cancelled, or to one this node sent before it restarted
// (a provider keeps a peer's wantlist until every connection to it has
// closed, which for QUIC is its idle timeout after a crash). A provider
// that sends junk instead of what a fetch asked for is dropped by that
// fetch, as its requests time out.
func (s *Service) onUnrequested(p peer.ID, n int) {
	s.log.Debug("peer sent blocks this node did not ask for; dropped", "peer", p, "blocks", n)
}

// AddOptions tunes an add.
type AddOptions struct {
	// NoPin leaves the content unpinned: the next GC removes it.
	NoPin bool
	// Name labels the pin.
	Name string
	// Progress, if set, is called with the number of bytes imported so
	// far, chunk by chunk, from the goroutine that called Add or AddTree.
	Progress func(bytes int64)
}

// add runs build under the pin lock, with a DAG service that batches
// writes and a pool for the files' chunks, then syncs, pins and announces
// the root.
func (s *Service) add(ctx context.Context, opt AddOptions, build func(ipld.DAGService, *chunkPool) (ipld.Node, error)) (cid.Cid, error) {
	unlock := s.store.PinLock(ctx)
	defer unlock()
	// Straight to the store: no peer waits on blocks nobody has announced
	// yet, so bitswap need not hear of each one.
	pool := newChunkPool(ChunkSize)
	store := returningStore{Blockstore: s.store.Blockstore(), raw: s.store.raw, pool: pool}
	batch := ipld.NewBufferedDAG(ctx, mdag.NewDAGService(blockservice.New(store, nil)))
	n, err := build(batch, pool)
	if err != nil {
		return cid.Undef, err
	}
	if err := batch.Commit(); err != nil {
		return cid.Undef, fmt.Errorf("add: write blocks: %w", err)
	}
	if err := s.store.Sync(ctx); err != nil {
		return cid.Undef, fmt.Errorf("add: sync: %w", err)
	}
	if !opt.NoPin {
		if err := s.store.Pin(ctx, n.Cid(), opt.Name); err != nil {
			return cid.Undef, err
		}
		s.announce(n.Cid())
	}
	return n.Cid(), nil
}

// Add stores the bytes of r as a UnixFS file and returns its CID, the one
// `ipfs add --cid-version 1` gives for the same bytes. It pins the file
// unless opt.NoPin.
func (s *Service) Add(ctx context.Context, r io.Reader, opt AddOptions) (cid.Cid, error) {
	return s.add(ctx, opt, func(dag ipld.DAGService, pool *chunkPool) (ipld.Node, error) {
		n, _, err := importFileProgress(dag, ctxReader{ctx, r}, opt.Progress, pool)
		if err != nil {
			return nil, fmt.Errorf("add: %w", err)
		}
		return n, nil
	})
}

// ctxReader stops a long read (an import) once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Entries is a source of directory entries for AddTree: it calls put for
// each file (with its contents), mkdir for each directory and link for each
// symlink, in any order, with slash-separated paths relative to the root.
type Entries func(put func(path string, r io.Reader) error, mkdir func(path string) error, link func(path, target string) error) error

// AddTree stores a directory tree and returns the CID of its root, the one
// `ipfs add -r --cid-version 1` gives for the same tree.
func (s *Service) AddTree(ctx context.Context, entries Entries, opt AddOptions) (cid.Cid, error) {
	var total int64
	return s.add(ctx, opt, func(dag ipld.DAGService, pool *chunkPool) (ipld.Node, error) {
		tb := newTreeBuilder(dag)
		err := entries(
			func(p string, r io.Reader) error {
				base := total
				var progress func(int64)
				if opt.Progress != nil {
					progress = func(n int64) { opt.Progress(base + n) }
				}
				n, read, err := importFileProgress(dag, ctxReader{ctx, r}, progress, pool)
				total += read
				if err != nil {
					return fmt.Errorf("add %s: %w", p, err)
				}
				return tb.put(p, n)
			},
			tb.mkdir,
			func(p, target string) error {
				n, err := symlinkNode(target)
				if err != nil {
					return fmt.Errorf("add %s: %w", p, err)
				}
				if err := dag.Add(ctx, n); err != nil {
					return err
				}
				return tb.put(p, n)
			})
		if err != nil {
			return nil, err
		}
		return tb.finish(ctx)
	})
}

// ParsePath splits "CID", "/ipfs/CID" or "CID/a/b" into the root CID and
// the path below it. A malformed CID gets a one-line error.
func ParsePath(p string) (cid.Cid, []string, error) {
	p = strings.TrimPrefix(strings.TrimSpace(p), "/ipfs/")
	p = strings.TrimPrefix(p, "ipfs://")
	root, rest, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	c, err := ParseCID(root)
	if err != nil {
		return cid.Undef, nil, err
	}
	var parts []string
	for _, s := range strings.Split(rest, "/") {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return c, parts, nil
}

// ParseCID parses a CID, with an error that says what was wrong.
func ParseCID(s string) (cid.Cid, error) {
	if s == "" {
		return cid.Undef, fmt.Errorf("%w: empty", ErrBadCID)
	}
	c, err := cid.Decode(s)
	if err != nil {
		short := s
		if len(short) > 80 {
			short = short[:80] + "…"
		}
		return cid.Undef, fmt.Errorf("%w: %q: %v", ErrBadCID, short, err)
	}
	// A CID with a hash function too weak (or digest too short or long)
	// to trust: the store and bitswap refuse such blocks, so say so now.
	if err := verifcid.ValidateCid(verifcid.DefaultAllowlist, c); err != nil {
		return cid.Undef, fmt.Errorf("%w: %s: %v", ErrBadCID, c, err)
	}
	return c, nil
}

// Resolve walks from root down parts and returns the node there, fetching
// what it needs through ng. A part CheckName refuses ("..", ".") is an
// error wrapping ErrBadName, before anything is fetched.
func resolve(ctx context.Context, ng ipld.NodeGetter, root cid.Cid, parts []string) (ipld.Node, error) {
	if t := root.Type(); t != cid.DagProtobuf && t != cid.Raw {
		return nil, fmt.Errorf("%s: %w (codec %s)", root, ErrNotUnixFS, multicodec.Code(t))
	}
	for i, name := range parts {
		if err := CheckName(name); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", root, strings.Join(parts[:i+1], "/"), err)
		}
	}
	// Every HAMT shard on the way is checked: boxo's code fails on a
	// malformed one with an error of no kind.
	ng = checked(ng)
	n, err := ng.Get(ctx, root)
	if errors.Is(err, ErrMalformed) {
		return nil, err
	}
	if err != nil {
		return nil, fetchError(ctx, root, err)
	}
	for i, name := range parts {
		e, err := describe(name, n)
		if err != nil {
			return nil, err
		}
		if e.Kind != KindDir {
			return nil, fmt.Errorf("%s: %s is not a directory", strings.Join(parts[:i+1], "/"), n.Cid())
		}
		dir, err := uio.NewDirectoryFromNode(dagOnly{ng}, n)
		if err != nil {
			return nil, err
		}
		n, err = dir.Find(ctx, name)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, mdag.ErrLinkNotFound) {
			return nil, fmt.Errorf("%s/%s: %w", root, strings.Join(parts[:i+1], "/"), ErrNotFound)
		}
		if errors.Is(err, ErrMalformed) {
			return nil, fmt.Errorf("%s/%s: %w", root, strings.Join(parts[:i+1], "/"), err)
		}
		if err != nil {
			return nil, fetchError(ctx, root, err)
		}
	}
	return n, nil
}

// dagOnly lets a NodeGetter stand where the directory code wants a
// DAGService; resolving never writes.
type dagOnly struct{ ipld.NodeGetter }

func (dagOnly) Add(context.Context, ipld.Node) error        { return errors.New("read-only") }
func (dagOnly) AddMany(context.Context, []ipld.Node) error  { return errors.New("read-only") }
func (dagOnly) Remove(context.Context, cid.Cid) error       { return errors.New("read-only") }
func (dagOnly) RemoveMany(context.Context, []cid.Cid) error { return errors.New("read-only") }

// fetchError turns a fetch that ran out of time into an error that says so.
func fetchError(ctx context.Context, c cid.Cid, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("fetch %s: %w before any peer sent it (%v)", c, ErrNoProvider, ctx.Err())
	}
	return fmt.Errorf("fetch %s: %w", c, err)
}

// pathGetter reads blocks from the store and fetches each missing one
// with the fetcher (whose search Fetching reports): for resolving a path
// and describing what is there.
func (s *Service) pathGetter(ctx context.Context) *localFirst {
	return &localFirst{local: s.local, remote: mdag.NewSession(ctx, s.dag), fetch: s.fetchBlock, store: s.store.raw}
}

// Stat describes the node at path p ("CID/a/b").
func (s *Service) Stat(ctx context.Context, p string) (Entry, error) {
	root, parts, err := ParsePath(p)
	if err != nil {
		return Entry{}, err
	}
	n, err := resolve(ctx, s.pathGetter(ctx), root, parts)
	if err != nil {
		return Entry{}, err
	}
	name := root.String()
	if len(parts) > 0 {
		name = parts[len(parts)-1]
	}
	return describe(name, n)
}

// List returns the entries of the directory at path p, in name order. A
// directory whose names CheckNames refuses is an error wrapping
// ErrBadName.
func (s *Service) List(ctx context.Context, p string) ([]Entry, error) {
	root, parts, err := ParsePath(p)
	if err != nil {
		return nil, err
	}
	ng := s.pathGetter(ctx)
	n, err := resolve(ctx, ng, root, parts)
	if err != nil {
		return nil, err
	}
	if e, err := describe("", n); err != nil {
		return nil, err
	} else if e.Kind != KindDir {
		return nil, fmt.Errorf("%s: not a directory", p)
	}
	// The shards of a HAMT directory are checked as they are read (the
	// children described below are not: one of them being malformed is
	// no reason to refuse this listing).
	dir, err := uio.NewDirectoryFromNode(dagOnly{checked(ng)}, n)
	if err != nil {
		return nil, fmt.Errorf("directory %s: %w: %v", p, ErrMalformed, err)
	}
	links, err := dir.Links(ctx)
	if errors.Is(err, ErrMalformed) {
		return nil, fmt.Errorf("directory %s: %w", p, err)
	}
	if err != nil {
		return nil, fetchError(ctx, n.Cid(), err)
	}
	names := make([]string, len(links))
	for i, l := range links {
		names[i] = l.Name
	}
	if err := CheckNames(names); err != nil {
		return nil, fmt.Errorf("directory %s: %w", p, err)
	}
	// Describe the children; fetching them in one batch lets bitswap
	// ask for all at once.
	keys := make([]cid.Cid, len(links))
	for i, l := range links {
		keys[i] = l.Cid
	}
	byCID := make(map[cid.Cid]ipld.Node, len(keys))
	for opt := range ng.GetMany(ctx, keys) {
		if opt.Err != nil {
			return nil, fetchError(ctx, n.Cid(), opt.Err)
		}
		byCID[opt.Node.Cid()] = opt.Node
	}
	out := make([]Entry, 0, len(links))
	for _, l := range links {
		child, ok := byCID[l.Cid]
		if !ok {
			return nil, fetchError(ctx, l.Cid, ipld.ErrNotFound{Cid: l.Cid})
		}
		e, err := describe(l.Name, child)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// File is a UnixFS file being read: it streams (the first bytes arrive
// before the whole file has), seeks, and must be closed.
type File interface {
	io.ReadSeekCloser
	io.WriterTo
	// Size is the file's length in bytes.
	Size() uint64
}

// Get opens the file at path p ("CID" or "CID/a/b") for reading. Blocks
// not in the store are fetched as the reader reaches them, with a window
// of blocks ahead requested from every provider at once; they land in the
// store (unpinned) on the way.
func (s *Service) Get(ctx context.Context, p string) (File, error) {
	root, parts, err := ParsePath(p)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(s.ctx)
	stop := context.AfterFunc(ctx, cancel)
	f := &file{cancel: cancel, stop: stop}
	ng := &localFirst{
		local:  s.local,
		remote: mdag.NewSession(rctx, s.dag),
		// When a block of the file is missing, walk its DAG ahead of
		// the reader, so that many blocks are in flight at once rather
		// than the reader's handful.
		start: func(root cid.Cid, path []cid.Cid) {
			// Seeded with the peers that served the path's blocks.
			seeds := s.servers.of(path...)
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				s.fetchAhead(rctx, root, seeds)
			}()
		},
		fetch: s.fetchBlock,
		store: s.store.raw,
	}
	n, err := resolve(ctx, ng, root, parts)
	if err != nil {
		f.close()
		return nil, err
	}
	ng.walk = n.Cid()
	r, err := newFileReader(rctx, ng, n)
	if err != nil {
		f.close()
		return nil, err
	}
	f.fileReader = r
	return f, nil
}

type file struct {
	*fileReader
	cancel context.CancelFunc
	stop   func() bool
	wg     sync.WaitGroup
	once   sync.Once
}

func (f *file) Close() error {
	f.close()
	return f.fileReader.Close()
}

// close stops the file's fetches and waits for them.
func (f *file) close() {
	f.once.Do(func() {
		f.stop()
		f.cancel()
		f.wg.Wait()
	})
}

// FetchProgress reports how a fetch goes.
type FetchProgress struct {
	Blocks int   `json:"blocks"`
	Bytes  int64 `json:"bytes"`
}

// Fetch brings every block of the DAG under root into the store, asking
// every provider for different blocks in parallel. progress, if set, is
// called after each block.
func (s *Service) Fetch(ctx context.Context, root cid.Cid, progress func(FetchProgress)) error {
	if err := s.fetchDAG(ctx, root, progress); err != nil {
		return fmt.Errorf("fetch %s: %w", root, err)
	}
	return nil
}

// Pin fetches everything under c (if need be) and pins it, then announces
// it. GC waits for a pin under way.
func (s *Service) Pin(ctx context.Context, c cid.Cid, name string, progress func(FetchProgress)) error {
	unlock := s.store.PinLock(ctx)
	defer unlock()
	if err := s.Fetch(ctx, c, progress); err != nil {
		return err
	}
	if err := s.store.Pin(ctx, c, name); err != nil {
		return err
	}
	s.announce(c)
	return nil
}

// Unpin removes c's pin; its blocks go at the next GC.
func (s *Service) Unpin(ctx context.Context, c cid.Cid) error { return s.store.Unpin(ctx, c) }

// Pins lists the pinned roots.
func (s *Service) Pins(ctx context.Context) ([]Pin, error) { return s.store.Pins(ctx) }

// GC removes every block not reachable from a pin.
func (s *Service) GC(ctx context.Context) (GCResult, error) { return s.store.GC(ctx) }

// Verify checks every stored block against its CID.
func (s *Service) Verify(ctx context.Context, remove bool) (VerifyResult, error) {
	return s.store.Verify(ctx, remove)
}

// PeerStat is what one peer has sent this node over bitswap.
type PeerStat struct {
	Peer   peer.ID `json:"peer"`
	Blocks int64   `json:"blocks"`
	Bytes  int64   `json:"bytes"`
	// Unrequested counts the blocks it sent that this node had not asked
	// for (or no longer wanted); they were dropped.
	Unrequested int64 `json:"unrequested"`
}

// Received returns, per peer, the blocks and bytes received from it since
// the node started.
func (s *Service) Received() []PeerStat { return s.trace.received() }

// Has reports whether the block c is in this node's store.
func (s *Service) Has(ctx context.Context, c cid.Cid) (bool, error) {
	return s.store.Blockstore().Has(ctx, c)
}

// Sent returns the bytes this node has sent p over bitswap.
func (s *Service) Sent(p peer.ID) int64 {
	if r := s.bswap.LedgerForPeer(p); r != nil {
		return int64(r.Sent)
	}
	return 0
}

// announce queues c to be announced to the DHT.
// announce queues c to be announced on every routing system.
func (s *Service) announce(c cid.Cid) {
	for _, a := range s.announcers {
		a.announce(c)
	}
}

// tracer watches bitswap traffic: it counts what each peer sends us, and
// spots blocks that match nothing we ever asked for.
type tracer struct {
	onUnrequested func(peer.ID, int)
	onMessage     func(peer.ID, bsmsg.BitSwapMessage, *lent)

	mu     sync.Mutex
	wanted map[string]time.Time // multihash -> when last asked for
	pruned time.Time
	stats  map[peer.ID]*PeerStat
}

// wantMemory is how long a CID we asked for counts as wanted; a block
// arriving later that matches nothing wanted in that time is unrequested.
const wantMemory = 10 * time.Minute

func newTracer(onUnrequested func(peer.ID, int), onMessage func(peer.ID, bsmsg.BitSwapMessage, *lent)) *tracer {
	return &tracer{onUnrequested: onUnrequested, onMessage: onMessage, wanted: map[string]time.Time{}, stats: map[peer.ID]*PeerStat{}, pruned: time.Now()}
}

// MessageSent is called for the messages bitswap's server sends; our
// wants are seen by watchedNet instead.
func (t *tracer) MessageSent(peer.ID, bsmsg.BitSwapMessage) {}

// sent records the CIDs an outgoing message asks for.
func (t *tracer) sent(m bsmsg.BitSwapMessage) {
	entries := m.Wantlist()
	if len(entries) == 0 {
		return
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range entries {
		if !e.Cancel {
			t.wanted[string(e.Cid.Hash())] = now
		}
	}
	if now.Sub(t.pruned) > wantMemory {
		for k, at := range t.wanted {
			if now.Sub(at) > wantMemory {
				delete(t.wanted, k)
			}
		}
		t.pruned = now
	}
}

// MessageReceived is bitswap's tracer method; the network calls receive
// for every message instead.
func (t *tracer) MessageReceived(p peer.ID, m bsmsg.BitSwapMessage) { t.receive(p, m, nil) }

// receive counts what m brings and hands it to the fetches under way; l
// is the lent buffer m's large blocks are in, if any.
func (t *tracer) receive(p peer.ID, m bsmsg.BitSwapMessage, l *lent) {
	t.onMessage(p, m, l)
	blks := m.Blocks()
	if len(blks) == 0 {
		return
	}
	unrequested := 0
	t.mu.Lock()
	st := t.stats[p]
	if st == nil {
		st = &PeerStat{Peer: p}
		t.stats[p] = st
	}
	for _, b := range blks {
		if _, ok := t.wanted[string(b.Cid().Hash())]; !ok {
			unrequested++
			st.Unrequested++
			continue
		}
		st.Blocks++
		st.Bytes += int64(len(b.RawData()))
	}
	t.mu.Unlock()
	if unrequested > 0 {
		t.onUnrequested(p, unrequested)
	}
}

func (t *tracer) received() []PeerStat {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]PeerStat, 0, len(t.stats))
	for _, st := range t.stats {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}
