package api

import (
	"net/http"
	"strings"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/errcode"
)

// handleDagExport streams the DAG under ?arg= as a CARv1 file, once every
// block of it is in the store (fetched from the network if need be).
// ?timeout= bounds the search for a provider, not the transfer.
func (s *Server) handleDagExport(w http.ResponseWriter, r *http.Request) {
	arg := strings.TrimPrefix(r.URL.Query().Get("arg"), "/ipfs/")
	c, err := content.ParseCID(arg)
	if err != nil {
		codedError(w, errcode.With(errcode.BadRequest, err))
		return
	}
	ctx, found, ok := finding(w, r)
	if !ok {
		return
	}
	// The first block to arrive, or the first byte written, ends the
	// search: from there on only the client's own deadline bounds the
	// transfer.
	cw := &carWriter{w: w, root: c.String(), started: func() { found(nil) }}
	err = s.node.Content().ExportCAR(ctx, c, cw, func(content.FetchProgress) { found(nil) })
	switch {
	case err != nil && !cw.wrote:
		err = found(err)
		codedError(w, err)
	case err != nil:
		// The status is sent; the cut-short file tells the client.
		s.log.Warn("dag export cut short", "cid", c, "err", err)
	}
}

// carWriter sends a CAR file's headers with its first bytes, and calls
// started then: until a byte is written, a failure can still be answered
// as an error.
type carWriter struct {
	w       http.ResponseWriter
	root    string
	started func()
	wrote   bool
}

func (cw *carWriter) Write(p []byte) (int, error) {
	if !cw.wrote {
		cw.wrote = true
		cw.started()
		cw.w.Header().Set("Content-Type", client.CARType)
		cw.w.Header().Set(client.HeaderCID, cw.root)
	}
	return cw.w.Write(p)
}

// handleDagImport stores the CAR file in the request body, pinning its
// roots unless ?pin=false.
func (s *Server) handleDagImport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opt := content.ImportOptions{Name: q.Get("name"), NoPin: q.Get("pin") == "false"}
	res, err := s.node.Content().ImportCAR(r.Context(), r.Body, opt)
	if err != nil {
		codedError(w, err)
		return
	}
	out := client.ImportResult{Roots: []string{}, Blocks: res.Blocks, Bytes: res.Bytes, Pinned: !opt.NoPin}
	for _, c := range res.Roots {
		out.Roots = append(out.Roots, c.String())
	}
	writeJSON(w, out)
}
