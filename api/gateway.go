package api

import (
	"context"
	"errors"
	"fmt"
	"github.com/ipld/go-ipld-prime/multicodec"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/files"
	"github.com/ipfs/boxo/gateway"
	mdag "github.com/ipfs/boxo/ipld/merkledag"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/boxo/namesys"
	ipath "github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/content"
)

// The gateway serves content by CID to browsers and any HTTP client, with
// no token, on a listener of its own: never on the API's origin, where a
// published page's script would run with the API's session cookie.
//
//	GET /ipfs/{cid}[/path]                   the path gateway
//	GET http://{cid}.ipfs.localhost:PORT/…   the subdomain gateway
//
// Content on the path gateway shares one origin with all other content,
// so it is served under a sandbox (a Content-Security-Policy with no
// scripts and an opaque origin). A request for /ipfs/{cid} whose Host is
// "localhost" is redirected to {cid}.ipfs.localhost, which browsers
// resolve to loopback by themselves: there each CID is an origin of its
// own, and pages may run their scripts. Everything is served with
// X-Content-Type-Options: nosniff.
//
// What is served, and how, follows the IPFS HTTP gateway specifications
// through boxo's gateway package: UnixFS files and directories, and the
// trustless responses (?format=raw, ?format=car, the Accept headers) by
// which other IPFS tools check the blocks they get.
//
//	GET /ipns/{name}[/path]                  a name, resolved (package names)
//	GET /ipns/{name}?format=ipns-record      the name's signed record
//	GET http://{domain}:PORT/…               a DNSLink website
//
// /ipns/ names are IPNS names (resolved through nube's DHT and the IPFS
// DHT) or DNSLink domains (their _dnslink TXT record, or the node's local
// map: nube.Config.DNSLinks, IPFS_NS_MAP); a request whose Host is neither
// an IP address nor localhost is served from that host's DNSLink, if it
// has one. Responses carry the CORS headers the gateway specification
// asks for (any origin may read; GET, HEAD and OPTIONS) and X-Ipfs-Path.
//
// The gateway bounds what anonymous clients can cost the node: responses
// under way at once, in all and per client address; a write that makes no
// progress for WriteTimeout ends the response; a search of the network
// for content the node lacks, and any later stall while reading it, ends
// after FetchTimeout. A file is read only as fast as its client takes it.

// Defaults for GatewayConfig.
const (
	DefaultGatewayAddr         = "127.0.0.1:8080"
	DefaultGatewayResponses    = 128
	DefaultGatewayPerClient    = 16
	DefaultGatewayFetchTimeout = 30 * time.Second
	DefaultGatewayWriteTimeout = 30 * time.Second
)

// gatewayQueueWait is how long a request waits for one of the responses
// under way to end before it is refused as busy.
const gatewayQueueWait = 5 * time.Second

// pathCSP is the policy for content on the path gateway: a sandbox with
// no scripts and an opaque origin, so a published page can neither run
// code nor claim the gateway's origin. Styles and images still work.
const pathCSP = "sandbox allow-forms allow-popups allow-downloads"

// GatewayConfig tunes a Gateway. Zero fields take the defaults above.
type GatewayConfig struct {
	// MaxResponses caps the responses under way at once; more wait up
	// to five seconds for one to end, then get 503.
	MaxResponses int
	// MaxPerClient caps the responses under way at once for one client
	// IP address; more get 429 at once.
	MaxPerClient int
	// FetchTimeout bounds how long the gateway waits on the network for
	// content the node lacks: to resolve a path, and for any one read.
	FetchTimeout time.Duration
	// WriteTimeout ends a response whose client takes nothing for this
	// long.
	WriteTimeout time.Duration
	// QueueWait is how long a request waits for a response under way to
	// end when MaxResponses are; zero means five seconds.
	QueueWait time.Duration
	// Logger receives the gateway's logs. Nil means no logs: a library is silent unless given a logger.
	Logger *slog.Logger
}

// Validate reports a negative field of c, naming it. Zero fields take the
// defaults.
func (c GatewayConfig) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxResponses", int64(c.MaxResponses)}, {"MaxPerClient", int64(c.MaxPerClient)},
		{"FetchTimeout", int64(c.FetchTimeout)}, {"WriteTimeout", int64(c.WriteTimeout)}, {"QueueWait", int64(c.QueueWait)},
	} {
		if f.v < 0 {
			return fmt.Errorf("api: GatewayConfig.%s is negative: want 0 for the default, or more", f.name)
		}
	}
	return nil
}

func (c *GatewayConfig) defaults() {
	if c.MaxResponses <= 0 {
		c.MaxResponses = DefaultGatewayResponses
	}
	if c.MaxPerClient <= 0 {
		c.MaxPerClient = DefaultGatewayPerClient
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = DefaultGatewayFetchTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultGatewayWriteTimeout
	}
	if c.QueueWait <= 0 {
		c.QueueWait = gatewayQueueWait
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Gateway serves one node's content read-only over HTTP.
type Gateway struct {
	node *nube.Node
	cfg  GatewayConfig
	log  *slog.Logger
	http *httpServer
	ipfs http.Handler // boxo's gateway

	slots   chan struct{} // one per response under way
	mu      sync.Mutex
	clients map[string]int // responses under way per client address
}

// ListenGateway binds a gateway for n to addr ("127.0.0.1:8080"; port 0
// picks a free port) and starts serving. Stop it with Close.
func ListenGateway(n *nube.Node, addr string, cfg GatewayConfig) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("gateway: listen on %s: %w", addr, err)
	}
	g := &Gateway{
		node: n, cfg: cfg, log: cfg.Logger.With("layer", "gateway"),
		slots:   make(chan struct{}, cfg.MaxResponses),
		clients: map[string]int{},
	}
	if g.ipfs, err = ipfsHandler(n, cfg); err != nil {
		ln.Close()
		return nil, err
	}
	g.http = serve(ln, &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second, // requests have no body
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
	})
	return g, nil
}

// ipfsHandler is boxo's implementation of the IPFS HTTP gateway
// specifications over the node's blocks: UnixFS files and directories,
// and the trustless responses (?format=raw|car, the Accept headers, CAR
// scopes and byte ranges) with which other IPFS tools verify what they
// get. "localhost" is a subdomain gateway; any other host is a path
// gateway. A search for content that finds nothing ends after
// FetchTimeout with 504, as does a response that stalls that long.
func ipfsHandler(n *nube.Node, cfg GatewayConfig) (http.Handler, error) {
	blocks, ok := n.Content().(interface {
		BlockService() blockservice.BlockService
	})
	if !ok {
		return nil, errors.New("gateway: the node's content layer offers no block service")
	}
	reg := prometheus.NewRegistry() // one gateway's own: a process may run several
	opts := []gateway.BackendOption{gateway.WithPrometheusRegistry(reg)}
	if ns, ok := n.Names().(nameSystem); ok {
		opts = append(opts, gateway.WithNameSystem(ns.NameSystem()), gateway.WithValueStore(ns.ValueStore()))
	} else {
		opts = append(opts, gateway.WithNameSystem(noNames{}))
	}
	backend, err := gateway.NewBlocksBackend(blocks.BlockService(), opts...)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	gc := gateway.Config{
		DeserializedResponses: true,
		DeprecatedXIpfsPath:   true,
		PublicGateways: map[string]*gateway.PublicGateway{
			"localhost": {Paths: []string{"/ipfs", "/ipns"}, UseSubdomains: true, NoDNSLink: true, DeserializedResponses: true},
		},
		RetrievalTimeout: cfg.FetchTimeout,
		MetricsRegistry:  reg,
	}
	files := filesBackend{
		BlocksBackend: backend, content: n.Content(), dag: mdag.NewDAGService(blocks.BlockService()),
		local: mdag.NewDAGService(blockservice.New(blocks.BlockService().Blockstore(), nil)),
	}
	h := gateway.NewHostnameHandler(gc, files, gateway.NewHandler(gc, files))
	return gateway.NewHeaders(nil).WithDeprecatedXIpfsPath().ApplyCors().Wrap(h), nil
}

// filesBackend is boxo's backend but for UnixFS files, which it serves
// through the node's own reader: that holds one block of a file at a time
// and fetches from every provider at once ahead of the client, where
// boxo's reader holds ten blocks per response (128 slow readers of large
// files took the gateway from 172 MiB to 862 MiB) and asks one provider
// at a time.
//
// It also refuses a directory whose names content.CheckNames refuses (a
// link named "../a" or "a/b", two links of one name), which boxo would
// list and put in a tar stream as they are: a tool unpacking such a tar
// could write outside its directory. The listing, or the tar of such a
// directory, is a 400 that names the bad name; a directory deeper in a
// tar stops the stream there, with the error at its end (boxo's way).
//
// And where boxo fails, it asks content.CheckPath, over the blocks the
// store holds, whether the DAG is malformed (a HAMT shard whose links
// are not shard links): boxo calls that a 500, the gateway's fault; it is
// the data's, a 400.
type filesBackend struct {
	*gateway.BlocksBackend
	content nube.Content
	dag     ipld.DAGService // to read a directory's names
	local   ipld.DAGService // the store's blocks only, to judge a failure
}

// why returns err, or for a path the content layer finds malformed, a
// 400 that says so. It reads only blocks the store holds (boxo fetched
// what it could), so a failure costs no second search of the network.
func (b filesBackend) why(ctx context.Context, p ipath.ImmutablePath, err error) error {
	if err == nil {
		return nil
	}
	var coded *gateway.ErrorStatusCode
	if errors.As(err, &coded) {
		return err
	}
	if bad := content.CheckPath(ctx, b.local, p.String()); bad != nil {
		return gateway.NewErrorStatusCode(bad, http.StatusBadRequest)
	}
	return err
}

func (b filesBackend) ResolvePath(ctx context.Context, p ipath.ImmutablePath) (gateway.ContentPathMetadata, error) {
	md, err := b.BlocksBackend.ResolvePath(ctx, p)
	return md, b.why(ctx, p, err)
}

func (b filesBackend) Head(ctx context.Context, p ipath.ImmutablePath) (gateway.ContentPathMetadata, *gateway.HeadResponse, error) {
	md, r, err := b.BlocksBackend.Head(ctx, p)
	return md, r, b.why(ctx, p, err)
}

func (b filesBackend) GetBlock(ctx context.Context, p ipath.ImmutablePath) (gateway.ContentPathMetadata, files.File, error) {
	md, f, err := b.BlocksBackend.GetBlock(ctx, p)
	return md, f, b.why(ctx, p, err)
}

func (b filesBackend) GetCAR(ctx context.Context, p ipath.ImmutablePath, params gateway.CarParams) (gateway.ContentPathMetadata, io.ReadCloser, error) {
	md, r, err := b.BlocksBackend.GetCAR(ctx, p, params)
	return md, r, b.why(ctx, p, err)
}

// checkNames refuses the directory c, whose node the store holds, if
// content.CheckNames refuses its names.
func (b filesBackend) checkNames(ctx context.Context, c cid.Cid) error {
	n, err := b.dag.Get(ctx, c)
	if err != nil {
		return err
	}
	dir, err := uio.NewDirectoryFromNode(b.dag, n)
	if err != nil {
		return nil // not a directory: no names
	}
	var names []string
	if err := dir.ForEachLink(ctx, func(l *ipld.Link) error {
		names = append(names, l.Name)
		return nil
	}); err != nil {
		return err
	}
	if err := content.CheckNames(names); err != nil {
		return gateway.NewErrorStatusCode(fmt.Errorf("directory %s: %w", c, err), http.StatusBadRequest)
	}
	return nil
}

// GetAll is boxo's (for a tar stream), once a directory's names are
// checked; the directories in it check their own as the stream reaches
// them.
func (b filesBackend) GetAll(ctx context.Context, p ipath.ImmutablePath) (gateway.ContentPathMetadata, files.Node, error) {
	md, n, err := b.getAll(ctx, p)
	return md, n, b.why(ctx, p, err)
}

func (b filesBackend) getAll(ctx context.Context, p ipath.ImmutablePath) (gateway.ContentPathMetadata, files.Node, error) {
	md, n, err := b.BlocksBackend.GetAll(ctx, p)
	if err != nil {
		return md, n, err
	}
	if d, ok := n.(files.Directory); ok {
		if err := b.checkNames(ctx, md.LastSegment.RootCid()); err != nil {
			n.Close()
			return md, nil, err
		}
		n = checkedDir{d}
	}
	return md, n, nil
}

// checkedDir is a directory whose entries' names are checked as they
// come: a bad one, or one seen before, ends the entries with an error.
type checkedDir struct{ files.Directory }

func (d checkedDir) Entries() files.DirIterator {
	return &checkedEntries{DirIterator: d.Directory.Entries(), seen: map[string]bool{}}
}

type checkedEntries struct {
	files.DirIterator
	seen map[string]bool
	err  error
}

func (it *checkedEntries) Next() bool {
	if it.err != nil || !it.DirIterator.Next() {
		return false
	}
	name := it.Name()
	it.err = content.CheckName(name)
	if it.err == nil && it.seen[name] {
		it.err = fmt.Errorf("%w %q: two entries have it", content.ErrBadName, name)
	}
	it.seen[name] = true
	return it.err == nil
}

func (it *checkedEntries) Err() error {
	if it.err != nil {
		return it.err
	}
	return it.DirIterator.Err()
}

func (it *checkedEntries) Node() files.Node {
	n := it.DirIterator.Node()
	if d, ok := n.(files.Directory); ok {
		return checkedDir{d}
	}
	return n
}

// Get is get, with a malformed DAG's failure a 400 (why).
func (b filesBackend) Get(ctx context.Context, p ipath.ImmutablePath, ranges ...gateway.ByteRange) (gateway.ContentPathMetadata, *gateway.GetResponse, error) {
	md, r, err := b.get(ctx, p, ranges...)
	return md, r, b.why(ctx, p, err)
}

func (b filesBackend) get(ctx context.Context, p ipath.ImmutablePath, ranges ...gateway.ByteRange) (gateway.ContentPathMetadata, *gateway.GetResponse, error) {
	md, err := b.BlocksBackend.ResolvePath(ctx, p)
	if err != nil {
		return md, nil, err
	}
	last := md.LastSegment.RootCid()
	if last.Type() != cid.DagProtobuf || len(md.LastSegmentRemainder) > 0 {
		return b.BlocksBackend.Get(ctx, p, ranges...)
	}
	f, err := b.content.Get(ctx, last.String())
	if err != nil {
		// A directory (its names checked), a symlink, or no UnixFS at
		// all: boxo's.
		if errors.Is(err, content.ErrIsDir) {
			if err := b.checkNames(ctx, last); err != nil {
				return md, nil, err
			}
		}
		return b.BlocksBackend.Get(ctx, p, ranges...)
	}
	size := int64(f.Size())
	if len(ranges) > 0 {
		// As boxo does: the reader starts at the first range's start.
		start := ranges[0].From
		if start < 0 {
			start = max(size+start, 0)
		}
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			f.Close()
			return md, nil, err
		}
	}
	return md, gateway.NewGetResponseFromReader(f, size), nil
}

// Addr returns the address the gateway listens on.
func (g *Gateway) Addr() string { return g.http.addr() }

// URL returns the gateway's base URL.
func (g *Gateway) URL() string { return "http://" + g.Addr() }

// Responses returns the number of responses under way.
func (g *Gateway) Responses() int { return len(g.slots) }

// Close stops the gateway, letting responses under way finish for up to
// five seconds.
func (g *Gateway) Close() error { return g.http.close() }

// ServeHTTP serves one gateway request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "the gateway is read-only: GET or HEAD", http.StatusMethodNotAllowed)
		return
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	host = strings.ToLower(host)
	for _, ns := range []string{"ipfs", "ipns"} {
		if label, ok := strings.CutSuffix(host, "."+ns+".localhost"); ok {
			// The subdomain gateway: the CID (or name) is the origin.
			if strings.Contains(label, ".") && ns == "ipfs" {
				http.Error(w, "bad subdomain gateway host "+strconv.Quote(r.Host), http.StatusBadRequest)
				return
			}
			g.admitted(w, r, func() { g.serve(w, r, ns, label+r.URL.Path) })
			return
		}
	}
	ns, rest, ok := "", "", false
	for _, n := range []string{"ipfs", "ipns"} {
		if rest, ok = strings.CutPrefix(r.URL.Path, "/"+n+"/"); ok {
			ns = n
			break
		}
	}
	if !ok {
		if host != "localhost" && net.ParseIP(strings.Trim(host, "[]")) == nil && r.URL.Path != "" {
			// Perhaps a DNSLink website: boxo looks the host's
			// DNSLink up and serves it, or answers that it has none.
			g.admitted(w, r, func() { g.ipfs.ServeHTTP(g.writer(w), r) })
			return
		}
		if r.URL.Path == "/" {
			h.Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "nube gateway: GET /ipfs/{cid}[/path], /ipns/{name}[/path]\n")
			return
		}
		http.NotFound(w, r)
		return
	}
	// At "localhost" boxo redirects to the CID's subdomain; anywhere else
	// this is the path gateway, where all content shares one origin.
	if host != "localhost" {
		h.Set("Content-Security-Policy", pathCSP)
	}
	g.admitted(w, r, func() { g.serve(w, r, ns, rest) })
}

// serve hands the request to boxo's gateway, once the Range header is
// mended; p is the content path ("CID/a/b") in the namespace ns ("ipfs"
// or "ipns": a name's path is checked once boxo has resolved it).
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, ns, p string) {
	if ns == "ipfs" {
		if err := checkContentPath(p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if !g.fixRange(w, r, p) {
			return
		}
	}
	g.ipfs.ServeHTTP(g.writer(w), r)
}

// checkContentPath refuses, before anything is looked up, a content path
// ("CID/a/b") whose CID this node would refuse anyway: one that does not
// parse, or whose hash is too weak or of the wrong length to trust
// (boxo's resolver answers those with 500), or one that names a path
// inside a block of a codec no decoder here can read.
func checkContentPath(p string) error {
	s, rest, _ := strings.Cut(p, "/")
	c, err := content.ParseCID(s)
	if err != nil {
		return err
	}
	if strings.Trim(rest, "/") != "" {
		if _, err := multicodec.LookupDecoder(c.Prefix().Codec); err != nil {
			return fmt.Errorf("cannot look up a path inside %s: no decoder here for its codec 0x%x", c, c.Prefix().Codec)
		}
	}
	return nil
}

// fixRange answers 416 to a Range header whose every range is a suffix of
// zero bytes ("bytes=-0"), which nothing can satisfy (boxo, like Go's
// ServeContent, would answer 206 with an inverted range), and drops such
// ranges from a longer list. It reports whether to go on. Only for the
// 416 does it look up the size of the content at p.
func (g *Gateway) fixRange(w http.ResponseWriter, r *http.Request, p string) bool {
	spec, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes=")
	if !ok {
		return true
	}
	var keep []string
	for _, one := range strings.Split(spec, ",") {
		one = strings.TrimSpace(one)
		if n, suffix := strings.CutPrefix(one, "-"); suffix && n != "" && strings.Trim(n, "0") == "" {
			continue
		}
		keep = append(keep, one)
	}
	if len(keep) > 0 {
		r.Header.Set("Range", "bytes="+strings.Join(keep, ","))
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.FetchTimeout)
	defer cancel()
	e, err := g.node.Content().Stat(ctx, p)
	if err != nil {
		http.Error(w, err.Error(), statusOf(err))
		return false
	}
	w.Header().Set("Content-Range", "bytes */"+strconv.FormatUint(e.Size, 10))
	http.Error(w, "range not satisfiable: a suffix of zero bytes", http.StatusRequestedRangeNotSatisfiable)
	return false
}

// writer gives every write to the client WriteTimeout to go through.
func (g *Gateway) writer(w http.ResponseWriter) http.ResponseWriter {
	return deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: g.cfg.WriteTimeout}
}

// admitted runs serve if the client and the gateway have room for one more
// response, and answers 429 or 503 if not.
func (g *Gateway) admitted(w http.ResponseWriter, r *http.Request, serve func()) {
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	g.mu.Lock()
	if g.clients[client] >= g.cfg.MaxPerClient {
		g.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		http.Error(w, fmt.Sprintf("too many requests under way from %s (at most %d)", client, g.cfg.MaxPerClient), http.StatusTooManyRequests)
		return
	}
	g.clients[client]++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		if g.clients[client]--; g.clients[client] == 0 {
			delete(g.clients, client)
		}
		g.mu.Unlock()
	}()
	wait := time.NewTimer(g.cfg.QueueWait)
	defer wait.Stop()
	select {
	case g.slots <- struct{}{}:
	case <-wait.C:
		w.Header().Set("Retry-After", "5")
		http.Error(w, "the gateway is busy; try again", http.StatusServiceUnavailable)
		return
	case <-r.Context().Done():
		return
	}
	defer func() { <-g.slots }()
	serve()
}

// deadlineWriter gives every write to the client WriteTimeout to go
// through: a client that stops reading loses its response rather than
// holding the gateway's buffers for ever.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(p)
}

// Flush sends what is buffered, for handlers that stream.
func (w deadlineWriter) Flush() { w.rc.Flush() }

// Unwrap lets http.ResponseController reach the connection's writer.
func (w deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// nameSystem is what the gateway asks of the names layer: boxo's name
// system over it, and the routing its records are read from.
type nameSystem interface {
	NameSystem() namesys.NameSystem
	ValueStore() routing.ValueStore
}

// noNames is the name system of a node without a names layer: nothing is
// resolved.
type noNames struct{}

var errNoNames = gateway.NewErrorStatusCode(errors.New("this gateway serves /ipfs/ content only: IPNS and DNSLink are not supported"), http.StatusNotImplemented)

func (noNames) Resolve(context.Context, ipath.Path, ...namesys.ResolveOption) (namesys.Result, error) {
	return namesys.Result{}, errNoNames
}

func (noNames) ResolveAsync(context.Context, ipath.Path, ...namesys.ResolveOption) <-chan namesys.AsyncResult {
	ch := make(chan namesys.AsyncResult, 1)
	ch <- namesys.AsyncResult{Err: errNoNames}
	close(ch)
	return ch
}

func (noNames) Publish(context.Context, crypto.PrivKey, ipath.Path, ...namesys.PublishOption) error {
	return errNoNames
}
