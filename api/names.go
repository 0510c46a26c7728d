package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipns"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/names"
)

// Name, key and routing endpoints (package names):
//
//	POST /api/v0/name/publish {key, value, lifetime, ttl} → NamePublished
//	GET  /api/v0/name/resolve?name=N                      → NameResolved
//	POST /api/v0/key/gen      {name}                      → Key
//	GET  /api/v0/key/list                                 → [Key]
//	POST /api/v0/key/remove   {name}
//	GET  /api/v0/routing/get?key=/ipns/N                  → the raw record
//	POST /api/v0/routing/put?key=/ipns/N  body: a record
//	POST /api/v0/space/publish {space, key}               → SitePublished
func (s *Server) nameRoutes(mux *router) {
	mux.HandleFunc("POST /api/v0/space/publish", s.handleSpacePublish)
	mux.HandleFunc("POST /api/v0/name/publish", s.handleNamePublish)
	mux.HandleFunc("GET /api/v0/name/resolve", s.handleNameResolve)
	mux.HandleFunc("POST /api/v0/key/gen", s.handleKeyGen)
	mux.HandleFunc("GET /api/v0/key/list", s.handleKeyList)
	mux.HandleFunc("POST /api/v0/key/remove", s.handleKeyRemove)
	mux.HandleFunc("GET /api/v0/routing/get", s.handleRoutingGet)
	mux.HandleFunc("POST /api/v0/routing/put", s.handleRoutingPut)
}

// nameTimeout bounds a publish or a lookup in the DHTs.
const nameTimeout = 2 * time.Minute

func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errcode.With(errcode.BadRequest, fmt.Errorf("%s %q: want a duration such as 48h or 5m", field, s))
	}
	return d, nil
}

func (s *Server) handleNamePublish(w http.ResponseWriter, r *http.Request) {
	var req client.NamePublishRequest
	if !readJSON(w, r, &req) {
		return
	}
	var opts names.PublishOptions
	var err error
	if opts.Lifetime, err = parseDuration("lifetime", req.Lifetime); err != nil {
		codedError(w, err)
		return
	}
	if opts.TTL, err = parseDuration("ttl", req.TTL); err != nil {
		codedError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), nameTimeout)
	defer cancel()
	p, err := s.node.Names().Publish(ctx, req.Key, req.Value, opts)
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, client.NamePublished{Name: p.Name, Value: p.Value, Sequence: p.Sequence,
		Validity: p.Validity.Format(time.RFC3339Nano), TTL: p.TTL.String()})
}

func (s *Server) handleNameResolve(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), nameTimeout)
	defer cancel()
	res, err := s.node.Names().Resolve(ctx, r.URL.Query().Get("name"))
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, client.NameResolved{Path: res.Path, TTL: res.TTL.String()})
}

func (s *Server) handleKeyGen(w http.ResponseWriter, r *http.Request) {
	var req client.KeyRequest
	if !readJSON(w, r, &req) {
		return
	}
	k, err := s.node.Names().Gen(req.Name)
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, client.Key{Name: k.Name, ID: k.ID})
}

func (s *Server) handleKeyList(w http.ResponseWriter, _ *http.Request) {
	keys, err := s.node.Names().Keys()
	if err != nil {
		codedError(w, err)
		return
	}
	out := make([]client.Key, 0, len(keys))
	for _, k := range keys {
		out = append(out, client.Key{Name: k.Name, ID: k.ID})
	}
	writeJSON(w, out)
}

func (s *Server) handleKeyRemove(w http.ResponseWriter, r *http.Request) {
	var req client.KeyRequest
	if !readJSON(w, r, &req) {
		return
	}
	if err := s.node.Names().Remove(req.Name); err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

// routingName returns the IPNS name of a routing key "/ipns/NAME"; other
// namespaces are not served.
func routingName(key string) (string, error) {
	name, ok := strings.CutPrefix(key, "/ipns/")
	if !ok || name == "" {
		return "", errcode.With(errcode.BadRequest, fmt.Errorf("routing key %q: only /ipns/NAME is served", key))
	}
	return name, nil
}

func (s *Server) handleRoutingGet(w http.ResponseWriter, r *http.Request) {
	name, err := routingName(r.URL.Query().Get("key"))
	if err != nil {
		codedError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), nameTimeout)
	defer cancel()
	rec, err := s.node.Names().Get(ctx, name)
	if err != nil {
		codedError(w, err)
		return
	}
	w.Header().Set("Content-Type", client.IPNSRecordType)
	w.Write(rec)
}

func (s *Server) handleRoutingPut(w http.ResponseWriter, r *http.Request) {
	name, err := routingName(r.URL.Query().Get("key"))
	if err != nil {
		codedError(w, err)
		return
	}
	rec, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(ipns.MaxRecordSize)))
	if err != nil {
		codedError(w, errcode.With(errcode.TooLarge, fmt.Errorf("a record is at most %d bytes", ipns.MaxRecordSize)))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), nameTimeout)
	defer cancel()
	if err := s.node.Names().Put(ctx, name, rec); err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

func (s *Server) handleSpacePublish(w http.ResponseWriter, r *http.Request) {
	var req client.SpacePublishRequest
	if !readJSON(w, r, &req) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), nameTimeout)
	defer cancel()
	p, err := s.node.Names().PublishSpace(ctx, req.Space, req.Key)
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, client.SitePublished{Space: p.Space, Root: p.Root, NamePublished: client.NamePublished{
		Name: p.Name, Value: p.Value, Sequence: p.Sequence, Validity: p.Validity.Format(time.RFC3339Nano), TTL: p.TTL.String()}})
}
