package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/group"
)

// Group endpoints:
//
//	POST /api/v0/group/create  {name, members}       → GroupStatus
//	POST /api/v0/group/join    {name, via}           → GroupStatus
//	GET  /api/v0/group/list                          → [name] (old: group/names, group/ls)
//	GET  /api/v0/group/status?name=N                 → GroupStatus
//	POST /api/v0/group/add     {name, peer}
//	POST /api/v0/group/remove  {name, peer}
//	GET  /api/v0/group/get?name=N&key=K              → GroupEntry
//	GET  /api/v0/group/list?name=N&prefix=P          → [GroupEntry]
//	POST /api/v0/group/put?name=N&key=K  body: value → GroupResult
//	POST /api/v0/group/cas     {name, key, old, value} → GroupResult
//	POST /api/v0/group/rm      {name, key}           → GroupResult
func (s *Server) groupRoutes(mux *router) {
	mux.HandleFunc("POST /api/v0/group/create", s.handleGroupCreate)
	mux.HandleFunc("POST /api/v0/group/join", s.handleGroupJoin)
	// group/list without a name lists the groups, with one its keys, as
	// Groups().List and Group.List do; names and ls are the old words.
	mux.HandleFunc("GET /api/v0/group/names", s.handleGroupsList)
	mux.HandleFunc("GET /api/v0/group/ls", s.handleGroupsList)
	mux.HandleFunc("GET /api/v0/group/status", s.handleGroupStatus)
	mux.HandleFunc("POST /api/v0/group/add", s.handleGroupMember)
	mux.HandleFunc("POST /api/v0/group/remove", s.handleGroupMember)
	mux.HandleFunc("GET /api/v0/group/get", s.handleGroupGet)
	mux.HandleFunc("GET /api/v0/group/list", s.handleGroupList)
	mux.HandleFunc("POST /api/v0/group/put", s.handleGroupPut)
	mux.HandleFunc("POST /api/v0/group/compare-and-swap", s.handleGroupCAS)
	mux.HandleFunc("POST /api/v0/group/delete", s.handleGroupCAS)
	// The old names.
	mux.HandleFunc("POST /api/v0/group/cas", s.handleGroupCAS)
	mux.HandleFunc("POST /api/v0/group/rm", s.handleGroupCAS)
}

// group opens a group this node keeps; it never forms a new one.
func (s *Server) group(ctx context.Context, name string) (*group.Group, error) {
	if !slices.Contains(s.node.Groups().List(), name) {
		return nil, fmt.Errorf("%w: this node keeps no group %q", group.ErrNotFound, name)
	}
	return s.node.Groups().Open(ctx, name, group.Options{})
}

func parsePeers(ss []string) ([]peer.ID, error) {
	var out []peer.ID
	for _, s := range ss {
		p, err := peer.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not a peer ID: %v", errcode.ErrBadRequest, s, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func (s *Server) handleGroupCreate(w http.ResponseWriter, r *http.Request) {
	var req client.GroupRequest
	if !readJSON(w, r, &req) {
		return
	}
	members, err := parsePeers(req.Members)
	if err != nil {
		codedError(w, err)
		return
	}
	if slices.Contains(s.node.Groups().List(), req.Name) {
		codedError(w, fmt.Errorf("%w: this node keeps a group %q already", errcode.ErrConflict, req.Name))
		return
	}
	g, err := s.node.Groups().Open(r.Context(), req.Name, group.Options{Members: members})
	if err != nil {
		codedError(w, err)
		return
	}
	s.writeGroupStatus(w, r, g)
}

func (s *Server) handleGroupJoin(w http.ResponseWriter, r *http.Request) {
	var req client.GroupRequest
	if !readJSON(w, r, &req) {
		return
	}
	via, err := parsePeers([]string{req.Via})
	if err != nil {
		codedError(w, err)
		return
	}
	g, err := s.node.Groups().Open(r.Context(), req.Name, group.Options{Join: via[0]})
	if err != nil {
		codedError(w, err)
		return
	}
	// The status of the instant it joined says no leader and no members
	// (raft has heard from none yet): wait until this node has caught up
	// through the leader, so the status answered is the group's.
	ctx, cancel := context.WithTimeout(r.Context(), GroupJoinWait)
	err = g.Sync(ctx)
	cancel()
	if err != nil {
		codedError(w, fmt.Errorf("joined group %s through %s, but did not catch up through a leader within %v: %w",
			req.Name, req.Via, GroupJoinWait, err))
		return
	}
	s.writeGroupStatus(w, r, g)
}

// GroupJoinWait is how long a join (POST /api/v0/group/join) waits for
// the node to catch up through the group's leader before it answers.
const GroupJoinWait = 30 * time.Second

func (s *Server) handleGroupsList(w http.ResponseWriter, r *http.Request) {
	names := s.node.Groups().List()
	if names == nil {
		names = []string{}
	}
	writeJSON(w, names)
}

func (s *Server) handleGroupStatus(w http.ResponseWriter, r *http.Request) {
	g, err := s.group(r.Context(), r.URL.Query().Get("name"))
	if err != nil {
		codedError(w, err)
		return
	}
	s.writeGroupStatus(w, r, g)
}

func (s *Server) writeGroupStatus(w http.ResponseWriter, r *http.Request, g *group.Group) {
	st, err := g.Status(r.Context())
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, groupStatusJSON(st))
}

// groupStatusJSON is a group's status as the API gives it.
func groupStatusJSON(st group.Status) client.GroupStatus {
	out := client.GroupStatus{Name: st.Name, Term: st.Term, LastIndex: st.LastIndex, Commit: st.Commit,
		Applied: st.Applied, State: st.State, Members: []client.GroupMember{}}
	if st.Leader != "" {
		out.Leader = st.Leader.String()
	}
	for _, m := range st.Members {
		out.Members = append(out.Members, client.GroupMember{ID: m.ID.String(), Voter: m.Voter, State: m.State, LastContact: m.LastContact})
	}
	return out
}

func (s *Server) handleGroupMember(w http.ResponseWriter, r *http.Request) {
	var req client.GroupRequest
	if !readJSON(w, r, &req) {
		return
	}
	p, err := parsePeers([]string{req.Peer})
	if err == nil {
		var g *group.Group
		if g, err = s.group(r.Context(), req.Name); err == nil {
			if r.URL.Path == "/api/v0/group/add" {
				err = g.AddMember(r.Context(), p[0])
			} else {
				err = g.RemoveMember(r.Context(), p[0])
			}
		}
	}
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

func (s *Server) handleGroupGet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	g, err := s.group(r.Context(), q.Get("name"))
	if err != nil {
		codedError(w, err)
		return
	}
	e, err := g.GetEntry(r.Context(), q.Get("key"))
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, client.GroupEntry{Key: e.Key, Value: e.Value, Version: e.Version})
}

func (s *Server) handleGroupList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("name") {
		s.handleGroupsList(w, r)
		return
	}
	g, err := s.group(r.Context(), q.Get("name"))
	if err != nil {
		codedError(w, err)
		return
	}
	es, err := g.List(r.Context(), q.Get("prefix"))
	if err != nil {
		codedError(w, err)
		return
	}
	out := make([]client.GroupEntry, 0, len(es))
	for _, e := range es {
		out = append(out, client.GroupEntry{Key: e.Key, Value: e.Value, Version: e.Version})
	}
	writeJSON(w, out)
}

func (s *Server) handleGroupPut(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	value, err := io.ReadAll(http.MaxBytesReader(w, r.Body, group.MaxValue))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			// Too large before bad: the kind a value of no fault but its size has.
			codedError(w, fmt.Errorf("%w: value over %d bytes", errcode.ErrTooLarge, group.MaxValue))
			return
		}
		codedError(w, errcode.With(errcode.BadRequest, err))
		return
	}
	g, err := s.group(r.Context(), q.Get("name"))
	if err != nil {
		codedError(w, err)
		return
	}
	v, err := g.Put(r.Context(), q.Get("key"), value)
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, client.GroupResult{OK: true, Version: v})
}

func (s *Server) handleGroupCAS(w http.ResponseWriter, r *http.Request) {
	var req client.GroupCAS
	if !readJSONMax(w, r, &req, 3*group.MaxValue) {
		return
	}
	g, err := s.group(r.Context(), req.Name)
	if err != nil {
		codedError(w, err)
		return
	}
	var ok bool
	if r.URL.Path == "/api/v0/group/delete" || r.URL.Path == "/api/v0/group/rm" {
		ok, err = g.Delete(r.Context(), req.Key)
	} else {
		if req.Value == nil {
			req.Value = []byte{}
		}
		ok, err = g.CompareAndSwap(r.Context(), req.Key, req.Old, req.Value)
	}
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, client.GroupResult{OK: ok})
}
