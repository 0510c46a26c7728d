package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/remote"
)

// FunctionsResult is the answer of GET /api/v0/remote/ls: the functions a
// peer serves to this node.
type FunctionsResult struct {
	Peer      string            `json:"peer"`
	Functions []remote.FuncInfo `json:"functions"`
}

// handleRemoteLs lists the functions ?peer= serves to this node.
func (s *Server) handleRemoteLs(w http.ResponseWriter, r *http.Request) {
	arg := r.URL.Query().Get("peer")
	p, err := peer.Decode(arg)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad peer ID %q: %w", arg, err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	fs, err := s.node.Remote().Functions(ctx, p)
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, context.DeadlineExceeded) {
			code = http.StatusGatewayTimeout
		}
		writeError(w, code, err)
		return
	}
	if fs == nil {
		fs = []remote.FuncInfo{}
	}
	writeJSON(w, FunctionsResult{Peer: p.String(), Functions: fs})
}

// RemoteLs lists the functions peer serves to the node.
func (c *Client) RemoteLs(ctx context.Context, peer string) (FunctionsResult, error) {
	var out FunctionsResult
	return out, c.Call(ctx, http.MethodGet, "/api/v0/remote/ls?peer="+url.QueryEscape(peer), nil, &out)
}
