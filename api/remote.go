package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/errcode"
)

// handleRemoteLs lists the functions ?peer= serves to this node.
func (s *Server) handleRemoteLs(w http.ResponseWriter, r *http.Request) {
	arg := r.URL.Query().Get("peer")
	p, err := peer.Decode(arg)
	if err != nil {
		codedError(w, errcode.With(errcode.BadRequest, fmt.Errorf("bad peer ID %q: %w", arg, err)))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	fs, err := s.node.Remote().Functions(ctx, p)
	if err != nil {
		codedError(w, err)
		return
	}
	out := client.FunctionsResult{Peer: p.String(), Functions: []client.FuncInfo{}}
	for _, f := range fs {
		out.Functions = append(out.Functions, client.FuncInfo(f))
	}
	writeJSON(w, out)
}
