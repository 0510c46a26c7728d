package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/space"
)

// Space endpoints. A space is named [OWNER/]NAME: without an owner, the
// node's own user's.
//
//	POST /api/v0/space/create   {name, local, on, replicas, public} → SpaceInfo
//	GET  /api/v0/space/list                                        → [SpaceSummary]
//	GET  /api/v0/space/holdings                                    → [SpaceHolding]
//	GET  /api/v0/space/info?space=S                                → SpaceInfo
//	POST /api/v0/space/put?space=S&key=K   body: the value
//	GET  /api/v0/space/get?space=S&key=K   → the value (X-Nube-Size)
//	GET  /api/v0/space/list?space=S&prefix=P                       → [SpaceItem] (old: space/ls)
//	POST /api/v0/space/rm       {space, key}
//	POST /api/v0/space/delete   {space}
//	POST /api/v0/space/grant    {space, user, read, write, delegate, until} → SpaceGrant
//	POST /api/v0/space/revoke   {space, grant}
//	POST /api/v0/space/migrate  {space, local, on, replicas}       → NDJSON SpaceProgress
//	GET  /api/v0/space/watch?space=S                               → NDJSON SpaceEvent
//	POST /api/v0/space/home     {space, to}                        → SpaceInfo (on the home)
func (s *Server) spaceRoutes(mux *router) {
	mux.HandleFunc("POST /api/v0/space/create", s.handleSpaceCreate)
	mux.HandleFunc("GET /api/v0/space/list", s.handleSpaceList)
	mux.HandleFunc("GET /api/v0/space/holdings", s.handleSpaceHoldings)
	mux.HandleFunc("GET /api/v0/space/info", s.handleSpaceInfo)
	mux.HandleFunc("POST /api/v0/space/put", s.handleSpacePut)
	mux.HandleFunc("GET /api/v0/space/get", s.handleSpaceGet)
	// space/list without a space lists the spaces, with one its keys, as
	// Spaces().List and Space.List do; ls is the old word for the keys.
	mux.HandleFunc("GET /api/v0/space/ls", s.handleSpaceList)
	// delete removes one key and destroy the whole space (ARCHITECTURE.md's
	// vocabulary). Before 0.1.0, delete destroyed the space: a request
	// without a key is refused rather than read either way.
	deleteKey := s.spaceAction(func(ctx context.Context, sp *space.Space, req client.SpaceRef) error {
		if req.Key == "" {
			return fmt.Errorf("%w: space/delete removes one key and none was given; to destroy the whole space, POST /api/v0/space/destroy", errcode.ErrBadRequest)
		}
		return sp.Delete(ctx, req.Key)
	})
	mux.HandleFunc("POST /api/v0/space/delete", deleteKey)
	mux.HandleFunc("POST /api/v0/space/rm", deleteKey) // the old name
	mux.HandleFunc("POST /api/v0/space/destroy", s.spaceAction(func(ctx context.Context, sp *space.Space, _ client.SpaceRef) error {
		return sp.Destroy(ctx)
	}))
	mux.HandleFunc("POST /api/v0/space/grant", s.handleSpaceGrant)
	mux.HandleFunc("POST /api/v0/space/revoke", s.spaceAction(func(ctx context.Context, sp *space.Space, req client.SpaceRef) error {
		return sp.Revoke(ctx, req.Grant)
	}))
	mux.HandleFunc("POST /api/v0/space/migrate", s.handleSpaceMigrate)
	mux.HandleFunc("GET /api/v0/space/watch", s.handleSpaceWatch)
	mux.HandleFunc("POST /api/v0/space/home", s.handleSpaceHome)
}

// handleSpaceHome hands a space's home to another node of the user and
// answers with the space as it is after.
func (s *Server) handleSpaceHome(w http.ResponseWriter, r *http.Request) {
	var req client.SpaceHomeRequest
	if !readJSON(w, r, &req) {
		return
	}
	to, err := peer.Decode(req.To)
	if err != nil {
		codedError(w, fmt.Errorf("%w: to %q is not a peer ID: %v", errcode.ErrBadRequest, req.To, err))
		return
	}
	sp, err := s.openSpace(r, req.Space)
	if err == nil {
		err = sp.Home(r.Context(), to)
	}
	var info space.Info
	if err == nil {
		info, err = sp.Info(r.Context())
	}
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, spaceInfoJSON(info))
}

// openSpace opens the space ref names: OWNER/NAME or the node's own NAME.
func (s *Server) openSpace(r *http.Request, ref string) (*space.Space, error) {
	owner := peer.ID("")
	name := ref
	if strings.Contains(ref, "/") {
		var err error
		if owner, name, err = space.SplitID(ref); err != nil {
			return nil, err
		}
	}
	return s.node.Spaces().Open(r.Context(), owner, name)
}

func parsePolicy(p client.SpacePolicy) (space.Policy, error) {
	on, err := parsePeers(p.On)
	return space.Policy{Local: p.Local, On: on, Replicas: p.Replicas, Public: p.Public}, err
}

func spaceInfoJSON(i space.Info) client.SpaceInfo {
	out := client.SpaceInfo{ID: i.ID, Owner: i.Owner.String(), Name: i.Name, Seq: i.Seq, Root: i.Root, Home: i.Home.String(),
		Policy: client.SpacePolicy{Local: i.Policy.Local, Replicas: i.Policy.Replicas, Public: i.Policy.Public}, Epoch: i.Epoch, Keys: i.Keys, Bytes: i.Bytes,
		Revoked: i.Revoked, Updated: i.Updated, Deleted: i.Deleted, Holders: []client.SpaceHolder{}, Readers: []string{}}
	for _, p := range i.Policy.On {
		out.Policy.On = append(out.Policy.On, p.String())
	}
	for _, h := range i.Holders {
		out.Holders = append(out.Holders, client.SpaceHolder{Peer: h.Peer.String(), State: h.State, Seq: h.Seq})
	}
	for _, r := range i.Readers {
		out.Readers = append(out.Readers, r.String())
	}
	for _, g := range i.Grants {
		out.Grants = append(out.Grants, client.SpaceGrantInfo{ID: g.ID, To: g.To.String(), Issuer: g.Issuer.String(), Rights: g.Rights, Until: g.Until})
	}
	return out
}

func (s *Server) handleSpaceCreate(w http.ResponseWriter, r *http.Request) {
	var req client.SpaceCreate
	if !readJSON(w, r, &req) {
		return
	}
	pol, err := parsePolicy(req.SpacePolicy)
	if err != nil {
		codedError(w, err)
		return
	}
	sp, err := s.node.Spaces().Create(r.Context(), req.Name, pol)
	if err != nil {
		codedError(w, err)
		return
	}
	info, err := sp.Info(r.Context())
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, spaceInfoJSON(info))
}

func (s *Server) handleSpacesList(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, spaceSummaries(s.node.Spaces().List()))
}

func spaceSummaries(ss []space.Summary) []client.SpaceSummary {
	out := []client.SpaceSummary{}
	for _, x := range ss {
		out = append(out, client.SpaceSummary{ID: x.ID, Owner: x.Owner.String(), Name: x.Name, Role: x.Role, Seq: x.Seq,
			Keys: x.Keys, Bytes: x.Bytes, Policy: x.Policy, Holders: x.Holders})
	}
	return out
}

func (s *Server) handleSpaceHoldings(w http.ResponseWriter, r *http.Request) {
	hs, err := s.node.Spaces().Holdings(r.Context())
	if err != nil {
		codedError(w, err)
		return
	}
	out := []client.SpaceHolding{}
	for _, h := range hs {
		out = append(out, client.SpaceHolding(h))
	}
	writeJSON(w, out)
}

func (s *Server) handleSpaceInfo(w http.ResponseWriter, r *http.Request) {
	sp, err := s.openSpace(r, r.URL.Query().Get("space"))
	if err != nil {
		codedError(w, err)
		return
	}
	info, err := sp.Info(r.Context())
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, spaceInfoJSON(info))
}

func (s *Server) handleSpacePut(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sp, err := s.openSpace(r, q.Get("space"))
	if err != nil {
		codedError(w, err)
		return
	}
	if err := sp.Put(r.Context(), q.Get("key"), r.Body); err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

func (s *Server) handleSpaceGet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sp, err := s.openSpace(r, q.Get("space"))
	if err != nil {
		codedError(w, err)
		return
	}
	v, err := sp.Get(r.Context(), q.Get("key"))
	if err != nil {
		codedError(w, err)
		return
	}
	defer v.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(client.HeaderSize, strconv.FormatUint(v.Size(), 10))
	w.Header().Set("Content-Length", strconv.FormatUint(v.Size(), 10))
	_, _ = io.Copy(w, v)
}

func (s *Server) handleSpaceList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("space") && r.URL.Path == "/api/v0/space/list" {
		s.handleSpacesList(w, r)
		return
	}
	sp, err := s.openSpace(r, q.Get("space"))
	if err != nil {
		codedError(w, err)
		return
	}
	items, err := sp.List(r.Context(), q.Get("prefix"))
	if err != nil {
		codedError(w, err)
		return
	}
	out := []client.SpaceItem{}
	for _, it := range items {
		out = append(out, client.SpaceItem(it))
	}
	writeJSON(w, out)
}

// spaceAction answers a POST of a SpaceRef with act's outcome.
func (s *Server) spaceAction(act func(ctx context.Context, sp *space.Space, req client.SpaceRef) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req client.SpaceRef
		if !readJSON(w, r, &req) {
			return
		}
		sp, err := s.openSpace(r, req.Space)
		if err == nil {
			err = act(r.Context(), sp, req)
		}
		if err != nil {
			codedError(w, err)
			return
		}
		writeJSON(w, struct{}{})
	}
}

func (s *Server) handleSpaceGrant(w http.ResponseWriter, r *http.Request) {
	var req client.SpaceGrantRequest
	if !readJSON(w, r, &req) {
		return
	}
	user, err := peer.Decode(req.User)
	if err != nil {
		codedError(w, fmt.Errorf("%w: user %q is not a user ID: %v", errcode.ErrBadRequest, req.User, err))
		return
	}
	var rights space.Rights
	if req.Read {
		rights |= space.Read
	}
	if req.Write {
		rights |= space.Write
	}
	if req.Delegate {
		rights |= space.Delegate
	}
	if rights&(space.Read|space.Write) == 0 {
		codedError(w, fmt.Errorf("%w: a grant gives read or write (or both)", errcode.ErrBadRequest))
		return
	}
	sp, err := s.openSpace(r, req.Space)
	if err != nil {
		codedError(w, err)
		return
	}
	g, err := sp.Grant(r.Context(), user, rights, req.Until)
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, client.SpaceGrant{ID: g.ID(), Token: g.Token(), To: g.To().String(), Rights: g.Rights().String(), Until: g.Until()})
}

// ndjsonWriter writes one JSON document a line, flushing each.
func ndjsonWriter(w http.ResponseWriter) func(v any) error {
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	return func(v any) error {
		if err := enc.Encode(v); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
}

func (s *Server) handleSpaceMigrate(w http.ResponseWriter, r *http.Request) {
	var req client.SpaceMigrate
	if !readJSON(w, r, &req) {
		return
	}
	pol, err := parsePolicy(req.SpacePolicy)
	if err != nil {
		codedError(w, err)
		return
	}
	sp, err := s.openSpace(r, req.Space)
	if err != nil {
		codedError(w, err)
		return
	}
	send := ndjsonWriter(w)
	progress := make(chan space.MigrateProgress, 64)
	done := make(chan error, 1)
	go func() {
		done <- sp.Migrate(r.Context(), pol, func(p space.MigrateProgress) {
			select {
			case progress <- p:
			default: // a slow reader of progress only misses lines
			}
		})
	}()
	for {
		select {
		case p := <-progress:
			send(client.SpaceProgress{Holder: p.Holder.String(), Blocks: p.Blocks, Bytes: p.Bytes, Total: p.Total, Done: p.Done})
		case err := <-done:
			last := client.SpaceProgress{Done: true}
			if err != nil {
				last = client.SpaceProgress{Error: err.Error()}
			}
			send(last)
			return
		}
	}
}

func (s *Server) handleSpaceWatch(w http.ResponseWriter, r *http.Request) {
	sp, err := s.openSpace(r, r.URL.Query().Get("space"))
	if err != nil {
		codedError(w, err)
		return
	}
	// The watch ends when the client goes or the server closes.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-stop:
		}
	}()
	// Watch fixes its starting version when called: a write after the
	// "watching" line is reported.
	events := sp.Watch(ctx)
	send := ndjsonWriter(w)
	send(client.SpaceEvent{Op: "watching"})
	for ev, err := range events {
		e := client.SpaceEvent{Seq: ev.Seq, Op: ev.Kind, Key: ev.Key, Time: ev.Time}
		if err != nil {
			e = client.SpaceEvent{Error: err.Error()}
		}
		if send(e) != nil || err != nil {
			return
		}
	}
}
