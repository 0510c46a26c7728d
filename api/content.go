package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/internal/dirtar"
)

// Content endpoints:
//
//	POST /api/v0/add?kind=file|tar&name=N&pin=false   body: the file, or a tar of a directory
//	GET  /api/v0/cat?arg=PATH                          the file's bytes
//	GET  /api/v0/get?arg=PATH                          a file's bytes, or a directory as tar
//	GET  /api/v0/ls?arg=PATH                           a directory's entries
//	GET  /api/v0/stat?arg=PATH                         what is at PATH
//	POST /api/v0/pin/add {"cid","name"}, /pin/rm {"cid"}; GET /pin/ls
//	POST /api/v0/gc, /api/v0/repo/verify {"remove"}
//
// PATH is "CID" or "CID/path/in/dir", with or without a leading /ipfs/.
//
// A CLI on the node's machine can hand it an open regular file instead of
// streaming bytes through the socket (client.HandoffFile, package
// fdpass): add takes ?from=HANDLE&size=N and reads the file itself; cat
// and get take ?to=HANDLE and write a file's bytes into it themselves,
// answering with the headers as soon as the file is found and, once it is
// all written, a client.Written report as the body (a directory still
// comes as a tar stream). The bytes then cross no socket and no second
// process: the CLI's CPU for a 1 GiB cat into a file went from 0.8 s to
// 0.03 s (RATIONALE.md, Blocks).

func (s *Server) handleAdd(w http.ResponseWriter, r *http.Request) { s.withFile(w, r, "from", s.add) }

// add adds the request's body, or the file handed over, from, if it is
// not nil.
func (s *Server) add(w http.ResponseWriter, r *http.Request, from *os.File) {
	q := r.URL.Query()
	opt := content.AddOptions{Name: q.Get("name"), NoPin: q.Get("pin") == "false"}
	var read int64
	opt.Progress = func(n int64) { read = n }
	body := io.Reader(r.Body)
	if from != nil {
		body = from
		if v := q.Get("size"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				codedError(w, errcode.With(errcode.BadRequest, fmt.Errorf("size %q: want a count of bytes", v)))
				return
			}
			body = io.LimitReader(from, n)
		}
	}
	var c cid.Cid
	var err error
	switch kind := q.Get("kind"); kind {
	case "", "file":
		c, err = s.node.Content().Add(r.Context(), body, opt)
	case "tar":
		if from != nil {
			codedError(w, errcode.With(errcode.BadRequest, errors.New("a directory's tar stream comes in the body, not in a file handed over")))
			return
		}
		c, err = s.node.Content().AddTree(r.Context(), tarEntries(body), opt)
	default:
		codedError(w, errcode.With(errcode.BadRequest, fmt.Errorf("kind %q: want file or tar", kind)))
		return
	}
	if err != nil {
		codedError(w, errcode.With(errcode.BadRequest, err))
		return
	}
	writeJSON(w, client.AddResult{CID: c.String(), Bytes: read, Pinned: !opt.NoPin})
}

// tarEntries reads a directory tree from a directory stream.
func tarEntries(r io.Reader) content.Entries {
	return func(put func(string, io.Reader) error, mkdir func(string) error, link func(string, string) error) error {
		return dirtar.Read(r, func(e dirtar.Entry, body io.Reader) error {
			switch e.Kind {
			case dirtar.Dir:
				return mkdir(e.Name)
			case dirtar.Symlink:
				return link(e.Name, e.Target)
			default:
				return put(e.Name, body)
			}
		})
	}
}

// finding bounds how long a request may look for content the node lacks
// before the content is found (?timeout=30s; none: no bound): past it,
// the request's context ends and done turns the error into one that says
// no provider was found. Reading on after that is not bounded by it.
func finding(w http.ResponseWriter, r *http.Request) (ctx context.Context, done func(error) error, ok bool) {
	arg := r.URL.Query().Get("arg")
	v := r.URL.Query().Get("timeout")
	if v == "" || v == "0" || v == "0s" {
		return r.Context(), func(err error) error { return err }, true
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		codedError(w, errcode.With(errcode.BadRequest, fmt.Errorf("timeout %q: want a duration such as 30s", v)))
		return nil, nil, false
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	expired := fmt.Errorf("%w for %s after %v", content.ErrNoProvider, arg, d)
	t := time.AfterFunc(d, func() { cancel(expired) })
	context.AfterFunc(r.Context(), func() { cancel(nil) })
	return ctx, func(err error) error {
		if !t.Stop() && err != nil && context.Cause(ctx) == expired {
			return expired
		}
		return err
	}, true
}

func (s *Server) handleCat(w http.ResponseWriter, r *http.Request) { s.withFile(w, r, "to", s.cat) }

// cat answers with the file at the request's path, or writes it into to
// if to is not nil.
func (s *Server) cat(w http.ResponseWriter, r *http.Request, to *os.File) {
	ctx, found, ok := finding(w, r)
	if !ok {
		return
	}
	f, err := s.node.Content().Get(ctx, r.URL.Query().Get("arg"))
	if err = found(err); err != nil {
		codedError(w, err)
		return
	}
	defer f.Close()
	w.Header().Set(client.HeaderKind, string(content.KindFile))
	w.Header().Set(client.HeaderSize, strconv.FormatUint(f.Size(), 10))
	if to != nil {
		writeInto(w, to, f)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatUint(f.Size(), 10))
	io.Copy(w, f)
}

// withFile calls h with the file the CLI handed over under the handle in
// the query parameter name (package fdpass), or with nil if the request
// names none, and closes the file after. A handle no file waits under is
// a bad request.
func (s *Server) withFile(w http.ResponseWriter, r *http.Request, name string, h func(http.ResponseWriter, *http.Request, *os.File)) {
	handle := r.URL.Query().Get(name)
	if handle == "" {
		h(w, r, nil)
		return
	}
	if s.handoff == nil {
		codedError(w, errcode.With(errcode.BadRequest, fmt.Errorf("%s: this node takes no files handed over", name)))
		return
	}
	f, err := s.handoff.Claim(handle)
	if err != nil {
		codedError(w, errcode.With(errcode.BadRequest, fmt.Errorf("%s: %w", name, err)))
		return
	}
	defer f.Close()
	h(w, r, f)
}

// writeInto writes f into the file handed over, to: the headers go first,
// so that the client knows the size as the file grows, and the body,
// once it is all written, is the report (client.Written).
func writeInto(w http.ResponseWriter, to *os.File, f io.Reader) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	http.NewResponseController(w).Flush()
	n, err := io.Copy(to, f)
	rep := client.Written{Bytes: n}
	if err != nil {
		rep.Status = statusOf(err)
		rep.Error = errorOf(err)
	}
	json.NewEncoder(w).Encode(rep)
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) { s.withFile(w, r, "to", s.get) }

// get answers with the file or directory at the request's path. A file
// handed over, to, is written only for a file; a directory comes as a
// tar stream as ever, and the client sees that from its kind.
func (s *Server) get(w http.ResponseWriter, r *http.Request, to *os.File) {
	arg := r.URL.Query().Get("arg")
	ctx, found, ok := finding(w, r)
	if !ok {
		return
	}
	e, err := s.node.Content().Stat(ctx, arg)
	if err = found(err); err != nil {
		codedError(w, err)
		return
	}
	setMeta(w.Header(), e)
	if e.Kind != content.KindDir {
		s.cat(w, r, to)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set(client.HeaderKind, string(content.KindDir))
	w.Header().Set(client.HeaderSize, strconv.FormatUint(e.Size, 10))
	w.Header().Set(client.HeaderCID, e.CID.String())
	w.Header().Set("Trailer", client.TrailerError)
	tw := dirtar.NewWriter(w)
	if err := s.writeTar(r.Context(), tw, strings.TrimSuffix(arg, "/"), ""); err != nil {
		// The status is sent: the error goes after the stream, left
		// unfinished, as a trailer the client reads in place of its end.
		s.log.Warn("get: tar stream cut short", "path", arg, "err", err)
		b, _ := json.Marshal(errorOf(err))
		w.Header().Set(client.TrailerError, base64.StdEncoding.EncodeToString(b))
		return
	}
	tw.Close()
}

// metaOf is the mode and time e's DAG carries, for a directory stream.
func metaOf(e content.Entry) dirtar.Meta { return dirtar.Meta{Mode: e.Mode, MTime: e.MTime} }

// setMeta sends the mode and time e's DAG carries, if any, as headers.
func setMeta(h http.Header, e content.Entry) {
	if e.Mode != 0 {
		h.Set(client.HeaderMode, fmt.Sprintf("%#o", e.Mode.Perm()))
	}
	if !e.MTime.IsZero() {
		h.Set(client.HeaderMTime, e.MTime.UTC().Format(time.RFC3339Nano))
	}
}

// writeTar writes the directory at p into w under the name prefix. A
// hostile name stops it twice over: List refuses the directory that holds
// it, and w refuses to write it.
func (s *Server) writeTar(ctx context.Context, w *dirtar.Writer, p, prefix string) error {
	entries, err := s.node.Content().List(ctx, p)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := path.Join(prefix, e.Name)
		child := p + "/" + e.Name
		switch e.Kind {
		case content.KindDir:
			if err := w.Dir(name, metaOf(e)); err != nil {
				return err
			}
			if err := s.writeTar(ctx, w, child, name); err != nil {
				return err
			}
		case content.KindSymlink:
			if err := w.Symlink(name, e.Target); err != nil {
				return err
			}
		default:
			f, err := s.node.Content().Get(ctx, child)
			if err != nil {
				return err
			}
			err = w.File(name, int64(f.Size()), metaOf(e), f)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Server) handleLs(w http.ResponseWriter, r *http.Request) {
	ctx, found, ok := finding(w, r)
	if !ok {
		return
	}
	entries, err := s.node.Content().List(ctx, r.URL.Query().Get("arg"))
	if err = found(err); err != nil {
		codedError(w, err)
		return
	}
	out := make([]client.EntryJSON, len(entries))
	for i, e := range entries {
		out[i] = entryJSON(e)
	}
	writeJSON(w, out)
}

func entryJSON(e content.Entry) client.EntryJSON {
	return client.EntryJSON{Name: e.Name, CID: e.CID.String(), Kind: string(e.Kind), Size: e.Size, Target: e.Target}
}

func (s *Server) handleStat(w http.ResponseWriter, r *http.Request) {
	ctx, found, ok := finding(w, r)
	if !ok {
		return
	}
	e, err := s.node.Content().Stat(ctx, r.URL.Query().Get("arg"))
	if err = found(err); err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, entryJSON(e))
}

func (s *Server) handlePinAdd(w http.ResponseWriter, r *http.Request) {
	var req client.PinRequest
	if !readJSON(w, r, &req) {
		return
	}
	c, err := content.ParseCID(strings.TrimPrefix(req.CID, "/ipfs/"))
	if err != nil {
		codedError(w, errcode.With(errcode.BadRequest, err))
		return
	}
	if err := s.node.Content().Pin(r.Context(), c, req.Name, nil); err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, client.PinRequest{CID: c.String(), Name: req.Name})
}

func (s *Server) handlePinRm(w http.ResponseWriter, r *http.Request) {
	var req client.PinRequest
	if !readJSON(w, r, &req) {
		return
	}
	c, err := content.ParseCID(strings.TrimPrefix(req.CID, "/ipfs/"))
	if err != nil {
		codedError(w, errcode.With(errcode.BadRequest, err))
		return
	}
	if err := s.node.Content().Unpin(r.Context(), c); err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, client.PinRequest{CID: c.String()})
}

func (s *Server) handlePinLs(w http.ResponseWriter, r *http.Request) {
	pins, err := s.node.Content().Pins(r.Context())
	if err != nil {
		codedError(w, err)
		return
	}
	if pins == nil {
		pins = []content.Pin{}
	}
	writeJSON(w, pins)
}

// handleFetching lists the fetches under way (GET /api/v0/fetching): the
// CLI shows them while it waits for content to be found.
func (s *Server) handleFetching(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.node.Content().Fetching())
}

func (s *Server) handleGC(w http.ResponseWriter, r *http.Request) {
	res, err := s.node.Content().GC(r.Context())
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, res)
}

func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) {
	var req client.VerifyRequest
	if !readJSON(w, r, &req) {
		return
	}
	res, err := s.node.Content().Verify(r.Context(), req.Remove)
	if err != nil {
		codedError(w, err)
		return
	}
	out := client.VerifyResult{Checked: res.Checked, Bad: []string{}, Removed: res.Removed}
	for _, c := range res.Bad {
		out.Bad = append(out.Bad, c.String())
	}
	writeJSON(w, out)
}
