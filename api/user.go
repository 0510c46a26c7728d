package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/invite"
)

// The user's nodes:
//
//	POST /api/v0/user/invite {ttl_ms} → UserInvite
//	POST /api/v0/user/join   {invite} → UserNode (this node)
//	GET  /api/v0/user/nodes           → [UserNode]
//	POST /api/v0/user/remove {node}   → UserNode (the one removed)
func (s *Server) userRoutes(mux *router) {
	mux.HandleFunc("POST /api/v0/user/invite", s.handleUserInvite)
	mux.HandleFunc("POST /api/v0/user/join", s.handleUserJoin)
	mux.HandleFunc("GET /api/v0/user/nodes", s.handleUserNodes)
	mux.HandleFunc("POST /api/v0/user/remove", s.handleUserRemove)
}

func userNodeJSON(n nube.UserNode) client.UserNode {
	return client.UserNode{ID: n.ID.String(), User: n.User.String(), Since: n.Since, Self: n.Self, Key: n.Key, Removed: n.Removed, Restart: n.Restart}
}

func (s *Server) handleUserInvite(w http.ResponseWriter, r *http.Request) {
	var req client.UserRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.TTLMS < 0 {
		codedError(w, fmt.Errorf("%w: ttl_ms %d is negative", errcode.ErrBadRequest, req.TTLMS))
		return
	}
	in, err := s.node.User().Invite(time.Duration(req.TTLMS) * time.Millisecond)
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, client.UserInvite{Invite: in.String(), User: in.User.String(), Peer: in.Peer.String(), Expires: time.Unix(in.Expires, 0).UTC()})
}

func (s *Server) handleUserJoin(w http.ResponseWriter, r *http.Request) {
	var req client.UserRequest
	if !readJSON(w, r, &req) {
		return
	}
	in, err := invite.Parse(req.Invite)
	if err != nil {
		codedError(w, err)
		return
	}
	n, err := s.node.User().Join(r.Context(), in)
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, userNodeJSON(n))
}

func (s *Server) handleUserNodes(w http.ResponseWriter, r *http.Request) {
	out := []client.UserNode{}
	for _, n := range s.node.User().Nodes() {
		out = append(out, userNodeJSON(n))
	}
	writeJSON(w, out)
}

func (s *Server) handleUserRemove(w http.ResponseWriter, r *http.Request) {
	var req client.UserRequest
	if !readJSON(w, r, &req) {
		return
	}
	p, err := peer.Decode(req.Node)
	if err != nil {
		codedError(w, fmt.Errorf("%w: %q is not a peer ID: %v", errcode.ErrBadRequest, req.Node, err))
		return
	}
	n, err := s.node.User().Remove(r.Context(), p)
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, userNodeJSON(n))
}
