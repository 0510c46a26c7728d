package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// httpServer is an HTTP server on a listener of its own: the API and the
// gateway each run one.
type httpServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// serve starts srv on ln.
func serve(ln net.Listener, srv *http.Server) *httpServer {
	h := &httpServer{srv: srv, ln: ln, done: make(chan error, 1)}
	go func() { h.done <- srv.Serve(ln) }()
	return h
}

// addr returns the address the server listens on.
func (h *httpServer) addr() string { return h.ln.Addr().String() }

// port returns the port the server listens on.
func (h *httpServer) port() string {
	_, p, _ := net.SplitHostPort(h.addr())
	return p
}

// close stops the server, letting requests under way finish for up to
// five seconds, then cutting them off.
func (h *httpServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := h.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = h.srv.Close()
	}
	if serr := <-h.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
