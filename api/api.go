// Package api is the daemon's local HTTP API: JSON endpoints for the CLI and
// scripts, Prometheus metrics, and the dashboard a browser opens. The
// read-only IPFS gateway is a server of its own (see Gateway), never on the
// API's origin: content anyone can publish must not run script where the
// API's session cookie is good.
//
// The API listens on loopback by default. Every request must carry the
// bearer token the daemon writes into its data dir (mode 0600), or the
// session cookie a browser gets from a one-time login link. Its Host header
// must be the API's own address or "localhost", so that DNS rebinding
// cannot reach it, and a request that a browser marks as coming from
// another origin (Origin, Sec-Fetch-Site) is refused, so that no other web
// page, not even one on another port of this machine, can use the cookie.
//
// Endpoints (all JSON):
//
//	GET  /api/v0/id       the node's identity and addresses
//	GET  /api/v0/status   a summary of the node's state
//	GET  /api/v0/peers    connected peers
//	POST /api/v0/connect  {"addr": MULTIADDR}
//	POST /api/v0/ping     {"peer": PEER ID, "count": N}
//	POST /api/v0/login    a fresh one-time login link for a browser
//	GET  /api/v0/openapi.json  this list in full, as an OpenAPI 3 document
//	GET  /metrics         Prometheus metrics (text format)
//	GET  /debug/pprof/    Go's profiler (net/http/pprof): CPU, heap,
//	                      goroutines, traces
//	…                     content: add, cat, get, ls, pin, gc (see content.go)
//	…                     spaces, topics, groups, the ledger (space.go, topic.go, …)
//	GET  /login#C         the login page: it sends the one-time code C (in
//	                      the fragment, so never to a server or a log) to
//	POST /api/v0/session  {"code": C}, which answers with a session cookie
//	GET  /                the dashboard (see dashboard.go)
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/internal/fdpass"
)

// maxBody caps a request body: every request this API takes is small.
const maxBody = 64 << 10

// maxPings caps the count of one ping request.
const maxPings = 100

// NewToken returns a fresh random API token.
func NewToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("api: crypto/rand failed: " + err.Error()) // cannot happen on supported platforms
	}
	return hex.EncodeToString(b)
}

// Server serves one node's API.
type Server struct {
	node  *nube.Node
	token string
	log   *slog.Logger
	http  *httpServer
	auth  *sessions
	// handoff takes the files the CLI hands over (content.go), when the
	// node has a data dir and the system can; else nil.
	handoff *fdpass.Listener

	traffic   history       // the dashboard's traffic chart, sampled by sample
	topicAcks ackBook       // subscriptions' deliveries waiting for client acks (topic.go)
	done      chan struct{} // closed by Close: ends the sampler and event streams
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Listen binds the API to addr ("127.0.0.1:5050"; port 0 picks a free port)
// and starts serving n's API with the given token. Stop it with Close.
func Listen(n *nube.Node, addr, token string, log *slog.Logger) (*Server, error) {
	if token == "" {
		return nil, errors.New("api: empty token")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s: %w", addr, err)
	}
	s := &Server{node: n, token: token, log: log.With("layer", "api"), auth: newSessions(n.ID().String(), sessionsFile(n))}
	s.done = make(chan struct{})
	if dir := n.Config().DataDir; dir != "" {
		h, err := fdpass.Listen(filepath.Join(dir, client.HandoffFile))
		switch {
		case err == nil:
			s.handoff = h
		case !errors.Is(err, fdpass.ErrUnsupported):
			s.log.Info("the CLI cannot hand files over to this node; it sends their bytes instead", "err", err)
		}
	}
	s.wg.Add(1)
	go s.sample()
	s.http = serve(ln, &http.Server{
		Handler: s.Handler(),
		// No ReadTimeout: an add or a dag import streams a file of
		// any size in its body. Every other body is capped at maxBody.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	})
	return s, nil
}

// sessionsFile is where n's browser sessions are kept, or "" for a node
// with no data dir.
func sessionsFile(n *nube.Node) string {
	if n.Config().DataDir == "" {
		return ""
	}
	return filepath.Join(n.Config().DataDir, SessionsFile)
}

// Addr returns the address the API listens on.
func (s *Server) Addr() string { return s.http.addr() }

// URL returns the API's base URL.
func (s *Server) URL() string { return "http://" + s.Addr() }

// LoginURL returns a link that logs a browser into the dashboard once:
// its code works a single time, within loginCodeLife, and is not the API
// token.
func (s *Server) LoginURL() string { return s.URL() + "/login#" + s.auth.newCode() }

// Close stops the API, letting requests under way finish for up to five
// seconds. Later calls return what the first did.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.closeErr = s.http.close()
		s.wg.Wait()
		if s.handoff != nil {
			s.closeErr = errors.Join(s.closeErr, s.handoff.Close())
		}
	})
	return s.closeErr
}

// Handler returns the API's HTTP handler, with the Host, origin and token
// checks.
func (s *Server) Handler() http.Handler {
	return s.checkHost(s.checkOrigin(s.checkAuth(s.routes())))
}

// routes registers every route of the API but those checkAuth serves
// itself (authRoutes).
func (s *Server) routes() *router {
	mux := newRouter()
	mux.HandleFunc("GET /api/v0/id", s.handleID)
	mux.HandleFunc("GET /api/v0/status", s.handleStatus)
	mux.HandleFunc("GET /api/v0/peers", s.handlePeers)
	mux.HandleFunc("POST /api/v0/connect", s.handleConnect)
	mux.HandleFunc("POST /api/v0/ping", s.handlePing)
	mux.HandleFunc("POST /api/v0/login", s.handleLoginLink)
	mux.HandleFunc("GET /api/v0/openapi.json", handleOpenAPI)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.node.Sys().Metrics(), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /{$}", s.handlePage)
	mux.HandleFunc("GET /ui/{file}", s.handleUI)
	mux.HandleFunc("GET /api/v0/events", s.handleEvents)
	mux.HandleFunc("GET /api/v0/dashboard", s.handleDashboard)
	mux.HandleFunc("POST /api/v0/fetch", s.handleFetch)
	mux.HandleFunc("POST /api/v0/add", s.handleAdd)
	mux.HandleFunc("GET /api/v0/cat", s.handleCat)
	mux.HandleFunc("GET /api/v0/get", s.handleGet)
	mux.HandleFunc("GET /api/v0/ls", s.handleLs)
	mux.HandleFunc("GET /api/v0/stat", s.handleStat)
	mux.HandleFunc("GET /api/v0/dag/export", s.handleDagExport)
	mux.HandleFunc("POST /api/v0/dag/import", s.handleDagImport)
	mux.HandleFunc("POST /api/v0/pin", s.handlePinAdd)
	mux.HandleFunc("POST /api/v0/unpin", s.handlePinRm)
	mux.HandleFunc("GET /api/v0/pins", s.handlePinLs)
	// The old names, kubo's.
	mux.HandleFunc("POST /api/v0/pin/add", s.handlePinAdd)
	mux.HandleFunc("POST /api/v0/pin/rm", s.handlePinRm)
	mux.HandleFunc("GET /api/v0/pin/ls", s.handlePinLs)
	mux.HandleFunc("GET /api/v0/fetching", s.handleFetching)
	mux.HandleFunc("POST /api/v0/gc", s.handleGC)
	mux.HandleFunc("POST /api/v0/repo/verify", s.handleVerify)
	mux.HandleFunc("GET /api/v0/remote/ls", s.handleRemoteLs)
	mux.HandleFunc("POST /api/v0/service/publish", s.handlePublish)
	mux.HandleFunc("GET /api/v0/service/ls", s.handleServiceLs)
	mux.HandleFunc("GET /api/v0/service/info", s.handleServiceInfo)
	mux.HandleFunc("GET /api/v0/service/runs", s.handleServiceRuns)
	mux.HandleFunc("POST /api/v0/call", s.handleCall)
	s.spaceRoutes(mux)
	s.topicRoutes(mux)
	s.jobRoutes(mux)
	s.cacheRoutes(mux)
	s.groupRoutes(mux)
	s.ledgerRoutes(mux)
	s.userRoutes(mux)
	s.nameRoutes(mux)
	// Go's profiler, as kubo offers it: behind the token like the rest.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// checkHost refuses requests whose Host is not an IP literal or "localhost"
// on the API's port. A DNS-rebinding page can make a browser send requests
// to 127.0.0.1 only under its own domain name, which this refuses.
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowedHost(r.Host, s.port()) {
			codedError(w, errcode.With(errcode.Forbidden, fmt.Errorf("host %q is not this API's address", r.Host)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) port() string {
	if s.http == nil {
		return ""
	}
	return s.http.port()
}

func allowedHost(host, port string) bool {
	h, p, err := net.SplitHostPort(host)
	if err != nil {
		return false
	}
	if port != "" && p != port {
		return false
	}
	return strings.EqualFold(h, "localhost") || net.ParseIP(h) != nil
}

func (s *Server) handleID(w http.ResponseWriter, r *http.Request) {
	st := s.node.Status()
	writeJSON(w, client.ID{ID: st.ID, UserID: st.UserID, Addrs: st.Addrs, Version: st.Version})
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.node.Status())
}

func (s *Server) handlePeers(w http.ResponseWriter, r *http.Request) {
	peers := s.node.Peers()
	if peers == nil {
		peers = []nube.PeerInfo{}
	}
	writeJSON(w, peers)
}

func (s *Server) handleConnect(w http.ResponseWriter, r *http.Request) {
	var req client.ConnectRequest
	if !readJSON(w, r, &req) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	id, err := s.node.Connect(ctx, req.Addr)
	if err != nil {
		codedError(w, errcode.With(errcode.Unreachable, err))
		return
	}
	writeJSON(w, client.ConnectResult{ID: id.String()})
}

func (s *Server) handlePing(w http.ResponseWriter, r *http.Request) {
	var req client.PingRequest
	if !readJSON(w, r, &req) {
		return
	}
	p, err := peer.Decode(req.Peer)
	if err != nil {
		codedError(w, errcode.With(errcode.BadRequest, fmt.Errorf("bad peer ID %q: %w", req.Peer, err)))
		return
	}
	if req.Count <= 0 {
		req.Count = 1
	}
	if req.Count > maxPings {
		codedError(w, errcode.With(errcode.BadRequest, fmt.Errorf("count %d is over the limit of %d", req.Count, maxPings)))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	res := client.PingResult{Peer: p.String()}
	for i := 0; i < req.Count; i++ {
		rtt, err := s.node.Ping(ctx, p)
		if err != nil {
			codedError(w, errcode.With(errcode.Unreachable, err))
			return
		}
		res.RTTMS = append(res.RTTMS, float64(rtt.Microseconds())/1000)
	}
	writeJSON(w, res)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// codedError answers err as every handler does: with the status of its
// errcode kind in the API's one table (client.StatusOf), and its code and
// message as a client.Error. A busy answer says when to try again.
func codedError(w http.ResponseWriter, err error) {
	if errcode.Of(err) == errcode.Busy {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(statusOf(err))
	_ = json.NewEncoder(w).Encode(errorOf(err))
}

// retryAfter is the Retry-After of a busy answer, in seconds: a node's
// queues drain in about that time.
const retryAfter = "1"

// statusOf is the HTTP status of err in the API's one table.
func statusOf(err error) int { return client.StatusOf(string(errcode.Of(err))) }

// errorOf is err as the API answers it: its errcode and message.
func errorOf(err error) *client.Error {
	return &client.Error{Code: string(errcode.Of(err)), Message: err.Error()}
}

// readJSON decodes a size-capped JSON body into v, answering 400 (and
// returning false) if it is too large or malformed.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	return readJSONMax(w, r, v, maxBody)
}

// readJSONMax is readJSON with a cap of max bytes on the body.
func readJSONMax(w http.ResponseWriter, r *http.Request, v any, max int64) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			codedError(w, errcode.With(errcode.TooLarge, fmt.Errorf("request body over %d bytes", max)))
			return false
		}
		codedError(w, errcode.With(errcode.BadRequest, fmt.Errorf("bad request body: %w", err)))
		return false
	}
	if dec.More() {
		codedError(w, errcode.With(errcode.BadRequest, errors.New("bad request body: more than one JSON value")))
		return false
	}
	_, _ = io.Copy(io.Discard, r.Body)
	return true
}
