package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/nubecloud/nube/internal/fdpass"
)

// Sized is a request body whose length is known, such as a file's. The
// node is told the length up front, and then reads the body in large
// pieces rather than in the 32 KiB chunks of a body of unknown length:
// for an add of a large file, a fraction of the system calls. A Sized
// *os.File goes from the file to the socket without passing through the
// program, where the OS can (sendfile on Linux).
type Sized struct {
	io.Reader
	Size int64
}

// Add streams body to the node as a file (kind "file") or as a tar of a
// directory (kind "tar") and returns the root's CID. A *Sized body is
// sent with its length. A *Sized *os.File of kind "file", on a client
// from Open on the node's own machine, is handed over to the node, which
// reads Size bytes from it itself (package fdpass): the file's offset
// moves as the node reads.
func (c *Client) Add(ctx context.Context, body io.Reader, kind, name string, pin bool) (AddResult, error) {
	q := url.Values{"kind": {kind}}
	if name != "" {
		q.Set("name", name)
	}
	if !pin {
		q.Set("pin", "false")
	}
	var out AddResult
	if sb, ok := body.(*Sized); ok && kind == "file" {
		if f, ok := sb.Reader.(*os.File); ok {
			if h, err := c.handOver(ctx, f); err == nil {
				q.Set("from", h)
				q.Set("size", strconv.FormatInt(sb.Size, 10))
				return out, c.send(ctx, http.MethodPost, "/api/v0/add?"+q.Encode(), "", nil, &out)
			}
		}
	}
	return out, c.send(ctx, http.MethodPost, "/api/v0/add?"+q.Encode(), "application/octet-stream", body, &out)
}

// CanHandOver reports whether the client may hand files over to its node
// (see Add, GetTo): it came from Open, and the node listens for them.
func (c *Client) CanHandOver() bool { return c.handoff != "" }

// handOver hands f over to the node and returns its handle. Any failure
// wraps ErrNoHandoff: the caller sends the bytes instead.
func (c *Client) handOver(ctx context.Context, f *os.File) (string, error) {
	if c.handoff == "" {
		return "", ErrNoHandoff
	}
	h, err := fdpass.Send(ctx, c.handoff, f)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoHandoff, err)
	}
	return h, nil
}

// GetTo is Get, with a file's bytes written into f by the node itself
// (on the node's machine: see Add): nothing comes through this process,
// and f's offset moves as the node writes. For a file, reading the
// Download to its end waits for the node to finish, and gives its error
// if it failed; a directory comes as Get gives it, and f is left as it
// was. With no way to hand f over, GetTo fails with ErrNoHandoff and the
// caller uses Get.
func (c *Client) GetTo(ctx context.Context, p string, f *os.File) (*Download, error) {
	return c.downloadTo(ctx, "/api/v0/get", p, f)
}

// CatTo is Cat as GetTo is Get.
func (c *Client) CatTo(ctx context.Context, p string, f *os.File) (*Download, error) {
	return c.downloadTo(ctx, "/api/v0/cat", p, f)
}

func (c *Client) downloadTo(ctx context.Context, endpoint, p string, f *os.File) (*Download, error) {
	h, err := c.handOver(ctx, f)
	if err != nil {
		return nil, err
	}
	d, err := c.downloadQuery(ctx, endpoint, c.findQuery(p)+"&to="+url.QueryEscape(h))
	if err != nil || d.Kind == "directory" {
		return d, err
	}
	d.ReadCloser, d.HandedOver = &report{body: d.ReadCloser}, true
	return d, nil
}

// report reads the node's Written report at the end of a download it
// wrote into a file: as a reader, it is empty, and ends with the node's
// error if it failed.
type report struct {
	body io.ReadCloser
	err  error
	done bool
}

func (r *report) Read([]byte) (int, error) {
	if !r.done {
		r.done = true
		var w Written
		if err := json.NewDecoder(io.LimitReader(r.body, maxAnswer)).Decode(&w); err != nil {
			r.err = fmt.Errorf("the node's report on the download: %w", err)
		} else if w.Error != nil {
			w.Error.Status = w.Status
			r.err = w.Error
		} else {
			r.err = io.EOF
		}
	}
	return 0, r.err
}

func (r *report) Close() error { return r.body.Close() }

// trailed reads a response's body and, at its end, gives the error the
// node sent after it (TrailerError) in place of io.EOF.
type trailed struct{ resp *http.Response }

func (t trailed) Read(p []byte) (int, error) {
	n, err := t.resp.Body.Read(p)
	if err == io.EOF {
		if e := trailerError(t.resp.Trailer.Get(TrailerError)); e != nil {
			return n, e
		}
	}
	return n, err
}

func (t trailed) Close() error { return t.resp.Body.Close() }

// trailerError decodes a TrailerError; one that does not decode still
// says the stream failed.
func trailerError(v string) error {
	if v == "" {
		return nil
	}
	e := &Error{Code: CodeInternal, Message: "the node could not finish the stream"}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil {
		json.Unmarshal(b, e)
	}
	return e
}

// Download is a file or directory (as a tar stream) coming from the node.
// A stream the node could not finish ends with its error, not io.EOF.
type Download struct {
	io.ReadCloser
	Kind string // "file" or "directory"
	Size int64  // the file's bytes, or the directory's DAG size; -1 if unknown
	CID  string
	// Mode and MTime are the permission bits and modification time the
	// DAG carries; zero when it carries none.
	Mode  os.FileMode
	MTime time.Time
	// HandedOver is true for a file the node wrote into the file handed
	// to it (GetTo, CatTo): the Download then reads as empty, and ends
	// with the node's error if it failed.
	HandedOver bool
}

// Get streams the file or directory at p ("CID" or "CID/path").
func (c *Client) Get(ctx context.Context, p string) (*Download, error) {
	return c.download(ctx, "/api/v0/get", p)
}

// Cat streams the file at p.
func (c *Client) Cat(ctx context.Context, p string) (*Download, error) {
	return c.download(ctx, "/api/v0/cat", p)
}

// findQuery is the query of a request for the content at p.
func (c *Client) findQuery(p string) string {
	q := url.Values{"arg": {p}}
	if c.FindTimeout > 0 {
		q.Set("timeout", c.FindTimeout.String())
	}
	return q.Encode()
}

func (c *Client) download(ctx context.Context, endpoint, p string) (*Download, error) {
	return c.downloadQuery(ctx, endpoint, c.findQuery(p))
}

func (c *Client) downloadQuery(ctx context.Context, endpoint, query string) (*Download, error) {
	resp, err := c.do(ctx, http.MethodGet, endpoint+"?"+query, "", nil)
	if err != nil {
		return nil, err
	}
	d := &Download{ReadCloser: trailed{resp}, Kind: resp.Header.Get(HeaderKind), Size: -1, CID: resp.Header.Get(HeaderCID)}
	if n, err := strconv.ParseInt(resp.Header.Get(HeaderSize), 10, 64); err == nil {
		d.Size = n
	}
	if m, err := strconv.ParseUint(resp.Header.Get(HeaderMode), 0, 32); err == nil {
		d.Mode = os.FileMode(m) & os.ModePerm
	}
	if t, err := time.Parse(time.RFC3339Nano, resp.Header.Get(HeaderMTime)); err == nil {
		d.MTime = t
	}
	return d, nil
}

// do sends a request with a streamed body (of contentType) and returns the response if it
// is a success; an error answer becomes an error carrying its message.
func (c *Client) do(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	length := int64(-1)
	if sb, ok := body.(*Sized); ok {
		body, length = sb.Reader, sb.Size // unwrapped: net/http sends an *os.File with sendfile
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if length >= 0 {
		req.ContentLength = length
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if c.dataDir != "" && isRefused(err) {
			return nil, noDaemon(c.dataDir)
		}
		return nil, fmt.Errorf("call %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		e := &Error{Status: resp.StatusCode}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("%s: %s", path, resp.Status)
		}
		if e.Code == "" {
			e.Code = CodeOf(resp.StatusCode)
		}
		return nil, e
	}
	return resp, nil
}

// Ls lists the directory at p.
func (c *Client) Ls(ctx context.Context, p string) ([]EntryJSON, error) {
	var out []EntryJSON
	return out, c.Call(ctx, http.MethodGet, "/api/v0/ls?"+c.findQuery(p), nil, &out)
}

// Pin pins cid on the node, fetching what it lacks.
func (c *Client) Pin(ctx context.Context, cid, name string) error {
	return c.Call(ctx, http.MethodPost, "/api/v0/pin", PinRequest{CID: cid, Name: name}, nil)
}

// Unpin lets the node's GC remove cid.
func (c *Client) Unpin(ctx context.Context, cid string) error {
	return c.Call(ctx, http.MethodPost, "/api/v0/unpin", PinRequest{CID: cid}, nil)
}

// PinInfo is one pin as the API lists it.
type PinInfo struct {
	CID     string `json:"cid"`
	Name    string `json:"name,omitempty"`
	Created string `json:"created"`
}

// Pins lists the node's pins.
func (c *Client) Pins(ctx context.Context) ([]PinInfo, error) {
	var out []PinInfo
	return out, c.Call(ctx, http.MethodGet, "/api/v0/pins", nil, &out)
}

// GCResult is the answer of POST /api/v0/gc.
type GCResult struct {
	Removed int   `json:"removed"`
	Freed   int64 `json:"freed"`
	Kept    int   `json:"kept"`
}

// GC runs garbage collection on the node.
func (c *Client) GC(ctx context.Context) (GCResult, error) {
	var out GCResult
	return out, c.Call(ctx, http.MethodPost, "/api/v0/gc", nil, &out)
}

// Fetching lists the node's fetches under way.
func (c *Client) Fetching(ctx context.Context) ([]Fetching, error) {
	var out []Fetching
	return out, c.Call(ctx, http.MethodGet, "/api/v0/fetching", nil, &out)
}

// Verify checks every block in the node's store.
func (c *Client) Verify(ctx context.Context, remove bool) (VerifyResult, error) {
	var out VerifyResult
	return out, c.Call(ctx, http.MethodPost, "/api/v0/repo/verify", VerifyRequest{Remove: remove}, &out)
}

// DagExport streams the DAG under c as a CARv1 file, once the node has all
// of it. The search for a provider is bounded by FindTimeout.
func (c *Client) DagExport(ctx context.Context, cid string) (*Download, error) {
	return c.download(ctx, "/api/v0/dag/export", cid)
}

// DagImport sends a CAR file to the node, which checks and stores every
// block and pins the file's roots unless pin is false.
func (c *Client) DagImport(ctx context.Context, car io.Reader, name string, pin bool) (ImportResult, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	if !pin {
		q.Set("pin", "false")
	}
	var out ImportResult
	return out, c.send(ctx, http.MethodPost, "/api/v0/dag/import?"+q.Encode(), CARType, car, &out)
}
