package api

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

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
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "the gateway is read-only: GET or HEAD", http.StatusMethodNotAllowed)
		return
	}
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	host = strings.ToLower(host)
	if label, ok := strings.CutSuffix(host, ".ipfs.localhost"); ok {
		// The subdomain gateway: the CID is the origin.
		if strings.Contains(label, ".") {
			http.Error(w, "bad subdomain gateway host "+strconv.Quote(r.Host), http.StatusBadRequest)
			return
		}
		g.admitted(w, r, func() { g.serve(w, r, label+r.URL.Path, r.URL.Path, false) })
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/ipfs/")
	if !ok {
		if r.URL.Path == "/" {
			h.Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "nube gateway: GET /ipfs/{cid}[/path]\n")
			return
		}
		http.NotFound(w, r)
		return
	}
	if host == "localhost" {
		if to, ok := subdomainURL(rest, port, r.URL.RawQuery); ok {
			http.Redirect(w, r, to, http.StatusMovedPermanently)
			return
		}
	}
	h.Set("Content-Security-Policy", pathCSP)
	g.admitted(w, r, func() { g.serve(w, r, rest, r.URL.Path, true) })
}

// subdomainURL returns the subdomain gateway's URL for rest ("CID/path"),
// with the CID as a base32 CIDv1 label, or false if the CID does not fit
// in a DNS label (or is no CID, which the path gateway then reports).
func subdomainURL(rest, port, query string) (string, bool) {
	first, tail, _ := strings.Cut(rest, "/")
	c, err := cid.Decode(first)
	if err != nil {
		return "", false
	}
	if c.Version() == 0 {
		c = cid.NewCidV1(cid.DagProtobuf, c.Hash())
	}
	label := c.String() // CIDv1 prints in base32
	if len(label) > 63 {
		return "", false
	}
	u := "http://" + label + ".ipfs.localhost"
	if port != "" {
		u += ":" + port
	}
	u += "/" + tail
	if query != "" {
		u += "?" + query
	}
	return u, true
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

// serve answers for the content at p ("CID/path"); urlPath is the path the
// client asked for, for redirects.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, p, urlPath string, sandboxed bool) {
	e, err := g.stat(r.Context(), p)
	if err != nil {
		gatewayError(w, err)
		return
	}
	etag := `"` + e.CID.String() + `"`
	h := w.Header()
	h.Set("Etag", etag)
	h.Set("Cache-Control", "public, max-age=29030400, immutable")
	switch e.Kind {
	case content.KindDir:
		if !strings.HasSuffix(urlPath, "/") {
			to := urlPath + "/"
			if r.URL.RawQuery != "" {
				to += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, to, http.StatusMovedPermanently)
			return
		}
		index := path.Join(p, "index.html")
		if idx, err := g.stat(r.Context(), index); err == nil && idx.Kind == content.KindFile {
			g.serveFile(w, r, index, "index.html", `"`+idx.CID.String()+`"`)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), g.cfg.FetchTimeout)
		entries, err := g.node.Content().List(ctx, p)
		cancel()
		if err != nil {
			gatewayError(w, err)
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		if !sandboxed {
			// The listing is ours, but it shows names anyone chose.
			h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		}
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		listing.Execute(w, struct {
			Path    string
			Entries []content.Entry
		}{strings.TrimSuffix(urlPath, "/"), entries})
	case content.KindSymlink:
		h.Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, e.Target)
	default:
		g.serveFile(w, r, p, e.Name, etag)
	}
}

// stat describes p, searching the network for at most FetchTimeout.
func (g *Gateway) stat(ctx context.Context, p string) (content.Entry, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.FetchTimeout)
	defer cancel()
	return g.node.Content().Stat(ctx, p)
}

// serveFile streams the file at p, with its Content-Type, Range and
// If-None-Match answered. Blocks are read (or fetched) only as the client
// takes the bytes; a read that waits on the network for FetchTimeout, or a
// write the client does not take for WriteTimeout, ends the response.
func (g *Gateway) serveFile(w http.ResponseWriter, r *http.Request, p, name, etag string) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stall := time.AfterFunc(g.cfg.FetchTimeout, cancel)
	defer stall.Stop()
	f, err := g.node.Content().Get(ctx, p)
	stall.Stop()
	if err != nil {
		gatewayError(w, err)
		return
	}
	defer f.Close()
	w.Header().Set("Etag", etag)
	if !fixRange(w, r, f.Size()) {
		return
	}
	rc := http.NewResponseController(w)
	http.ServeContent(
		deadlineWriter{ResponseWriter: w, rc: rc, d: g.cfg.WriteTimeout}, r, name, time.Time{},
		&stallReader{f: f, t: stall, d: g.cfg.FetchTimeout})
}

// fixRange answers 416 to a Range header whose every range is a suffix of
// zero bytes ("bytes=-0"), which nothing can satisfy (Go's ServeContent
// would answer 206 with an inverted range), and drops such ranges from a
// longer list. It reports whether to go on.
func fixRange(w http.ResponseWriter, r *http.Request, size uint64) bool {
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
	if len(keep) == 0 {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatUint(size, 10))
		http.Error(w, "range not satisfiable: a suffix of zero bytes", http.StatusRequestedRangeNotSatisfiable)
		return false
	}
	r.Header.Set("Range", "bytes="+strings.Join(keep, ","))
	return true
}

// gatewayError answers err as plain text with its status.
func gatewayError(w http.ResponseWriter, err error) {
	code := contentStatus(err)
	if errors.Is(err, context.Canceled) {
		code = http.StatusGatewayTimeout
	}
	http.Error(w, err.Error(), code)
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

// stallReader cancels the read of a file (through the timer t, which
// cancels its context) when one read waits longer than d: the blocks it
// needs are nowhere to be had.
type stallReader struct {
	f content.File
	t *time.Timer
	d time.Duration
}

func (s *stallReader) Read(p []byte) (int, error) {
	s.t.Reset(s.d)
	n, err := s.f.Read(p)
	s.t.Stop()
	return n, err
}

// Seek may fetch the blocks on the way to off, so it is bounded the same.
func (s *stallReader) Seek(off int64, whence int) (int64, error) {
	s.t.Reset(s.d)
	n, err := s.f.Seek(off, whence)
	s.t.Stop()
	return n, err
}

var listing = template.Must(template.New("ls").Parse(`<!doctype html>
<meta charset="utf-8"><title>{{.Path}}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}td{padding:2px 12px}</style>
<h1>{{.Path}}/</h1>
<table>{{range .Entries}}<tr><td><a href="{{.Name}}{{if eq .Kind "directory"}}/{{end}}">{{.Name}}</a></td><td>{{.Kind}}</td><td>{{.Size}}</td><td><code>{{.CID}}</code></td></tr>
{{end}}</table>
`))
