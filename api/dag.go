package api

import (
	"net/http"
	"strings"
	"sync"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/content"
)

// handleDagExport streams the DAG under ?arg= as a CARv1 file, once every
// block of it is in the store (fetched from the network if need be).
// ?timeout= bounds the search for a provider, not the transfer.
func (s *Server) handleDagExport(w http.ResponseWriter, r *http.Request) {
	arg := strings.TrimPrefix(r.URL.Query().Get("arg"), "/ipfs/")
	c, err := content.ParseCID(arg)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	ctx, found, ok := finding(w, r)
	if !ok {
		return
	}
	// The first block to arrive ends the search: from there on only the
	// client's own deadline bounds the transfer.
	var once sync.Once
	progress := func(content.FetchProgress) { once.Do(func() { found(nil) }) }
	if err := s.node.Content().Fetch(ctx, c, progress); err != nil {
		err = found(err)
		writeError(w, contentStatus(err), err)
		return
	}
	found(nil)
	w.Header().Set("Content-Type", client.CARType)
	w.Header().Set(client.HeaderCID, c.String())
	if err := s.node.Content().ExportCAR(r.Context(), c, w, nil); err != nil {
		// The status is sent; the cut-short file tells the client.
		s.log.Warn("dag export cut short", "cid", c, "err", err)
	}
}

// handleDagImport stores the CAR file in the request body, pinning its
// roots unless ?pin=false.
func (s *Server) handleDagImport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opt := content.ImportOptions{Name: q.Get("name"), NoPin: q.Get("pin") == "false"}
	res, err := s.node.Content().ImportCAR(r.Context(), r.Body, opt)
	if err != nil {
		writeError(w, contentStatus(err), err)
		return
	}
	out := client.ImportResult{Roots: []string{}, Blocks: res.Blocks, Bytes: res.Bytes, Pinned: !opt.NoPin}
	for _, c := range res.Roots {
		out.Roots = append(out.Roots, c.String())
	}
	writeJSON(w, out)
}
