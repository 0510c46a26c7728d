// Package client talks to a running nube daemon over its local HTTP API,
// as the nube CLI does. It links nothing of the node itself: the JSON
// documents it exchanges are its own types.
//
//	c, err := client.Open(dataDir) // finds the API's address and token there
//	st, err := c.Status(ctx)
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nubecloud/nube/internal/atomicfile"
)

// Files the daemon writes into its data dir so that other commands find it.
const (
	// EndpointFile holds the API's base URL.
	EndpointFile = "api"
	// TokenFile holds the API token (mode 0600).
	TokenFile = "api.token"
	// HandoffFile is the Unix socket on which the daemon takes open
	// files from a client on its machine (package fdpass), where the
	// system allows.
	HandoffFile = "api.sock"
)

// maxAnswer caps how much of an API answer the client reads.
const maxAnswer = 16 << 20

// WriteEndpoint records the API's URL and token in dataDir for the CLI.
func WriteEndpoint(dataDir, url, token string) error {
	if err := atomicfile.Write(filepath.Join(dataDir, TokenFile), []byte(token+"\n"), 0o600); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dataDir, EndpointFile), []byte(url+"\n"), 0o600)
}

// RemoveEndpoint deletes the files WriteEndpoint wrote, when the daemon
// stops.
func RemoveEndpoint(dataDir string) {
	os.Remove(filepath.Join(dataDir, EndpointFile))
	os.Remove(filepath.Join(dataDir, TokenFile))
}

// Client calls a daemon's API.
type Client struct {
	URL   string // base URL, such as http://127.0.0.1:5050
	Token string
	HTTP  *http.Client // nil means http.DefaultClient
	// FindTimeout bounds how long Get, Cat, Ls and Stat let the node look
	// for content it lacks; past it they fail with a 504 that says no
	// provider was found. Zero means no bound.
	FindTimeout time.Duration
	// dataDir is named in errors when the client came from Open.
	dataDir string
	// handoff is the daemon's HandoffFile, for a client from Open on a
	// data dir that has one; else "".
	handoff string
}

// Open returns a client for the daemon running on dataDir. If the daemon
// has never run there, or stopped cleanly, the error wraps ErrNoDaemon.
func Open(dataDir string) (*Client, error) {
	url, err := readSmall(filepath.Join(dataDir, EndpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, noDaemon(dataDir)
	}
	if err != nil {
		return nil, err
	}
	tok, err := readSmall(filepath.Join(dataDir, TokenFile))
	if err != nil {
		return nil, fmt.Errorf("read API token: %w", err)
	}
	c := &Client{URL: url, Token: tok, dataDir: dataDir}
	if fi, err := os.Stat(filepath.Join(dataDir, HandoffFile)); err == nil && fi.Mode().Type() == fs.ModeSocket {
		c.handoff = filepath.Join(dataDir, HandoffFile)
	}
	return c, nil
}

func noDaemon(dataDir string) error {
	return fmt.Errorf("%w on data dir %s; start one with: nube up --data %s", ErrNoDaemon, dataDir, dataDir)
}

func readSmall(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	return strings.TrimSpace(string(b)), err
}

// Call sends a request to path (with in as its JSON body when in is not
// nil) and decodes the JSON answer into out. An error answer from the API
// becomes an error carrying its message.
func (c *Client) Call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	return c.send(ctx, method, path, "application/json", body, out)
}

// send sends body (of contentType) to path and decodes the JSON answer
// into out, if out is not nil.
func (c *Client) send(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	resp, err := c.do(ctx, method, path, contentType, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("read answer of %s: %w", path, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode answer of %s: %w", path, err)
	}
	return nil
}

func isRefused(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial")
}

// ID returns the node's identity.
func (c *Client) ID(ctx context.Context) (ID, error) {
	var out ID
	return out, c.Call(ctx, http.MethodGet, "/api/v0/id", nil, &out)
}

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	return out, c.Call(ctx, http.MethodGet, "/api/v0/status", nil, &out)
}

// Peers lists the node's connected peers.
func (c *Client) Peers(ctx context.Context) ([]PeerInfo, error) {
	var out []PeerInfo
	return out, c.Call(ctx, http.MethodGet, "/api/v0/peers", nil, &out)
}

// Connect makes the node connect to addr.
func (c *Client) Connect(ctx context.Context, addr string) (ConnectResult, error) {
	var out ConnectResult
	return out, c.Call(ctx, http.MethodPost, "/api/v0/connect", ConnectRequest{Addr: addr}, &out)
}

// LoginLink returns a fresh one-time link that logs a browser in.
func (c *Client) LoginLink(ctx context.Context) (LoginLink, error) {
	var out LoginLink
	return out, c.Call(ctx, http.MethodPost, "/api/v0/login", nil, &out)
}

// Ping makes the node ping a peer count times.
func (c *Client) Ping(ctx context.Context, peer string, count int) (PingResult, error) {
	var out PingResult
	return out, c.Call(ctx, http.MethodPost, "/api/v0/ping", PingRequest{Peer: peer, Count: count}, &out)
}
