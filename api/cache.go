package api

import (
	"net/http"
	"strconv"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/cache"
	"github.com/nubecloud/nube/errcode"
)

// Cache endpoints (package cache). A space is named [OWNER/]NAME.
//
//	GET  /api/v0/cache/list             → [CacheStats], every cache open on the node
//	GET  /api/v0/cache/stats?name=N     → CacheStats
//	POST /api/v0/cache/drop  {name}     closes the cache N on this node, dropping its entries
//	GET  /api/v0/cache/get?space=S&key=K → the value, through the node's cache of S
//	                                      (opened with the defaults on first use)
func (s *Server) cacheRoutes(mux *router) {
	mux.HandleFunc("GET /api/v0/cache/list", s.handleCacheList)
	mux.HandleFunc("GET /api/v0/cache/stats", s.handleCacheStats)
	mux.HandleFunc("POST /api/v0/cache/drop", s.handleCacheDrop)
	mux.HandleFunc("GET /api/v0/cache/get", s.handleCacheGet)
}

func cacheStats(st cache.Stats) client.CacheStats {
	out := client.CacheStats{Name: st.Name, Entries: st.Entries, Bytes: st.Bytes, MaxBytes: st.MaxBytes,
		Version: st.Version, Confirmed: st.Confirmed, Bound: st.Bound, Strict: st.Strict,
		Hits: st.Hits, RemoteHits: st.RemoteHits, Misses: st.Misses, Loads: st.Loads,
		Invalidations: st.Invalidations, Evictions: st.Evictions, StaleFills: st.StaleFills}
	for _, p := range st.Peers {
		out.Peers = append(out.Peers, p.String())
	}
	return out
}

func (s *Server) handleCacheList(w http.ResponseWriter, _ *http.Request) {
	out := []client.CacheStats{}
	for _, st := range s.node.Caches().List() {
		out = append(out, cacheStats(st))
	}
	writeJSON(w, out)
}

func (s *Server) handleCacheStats(w http.ResponseWriter, r *http.Request) {
	c := s.node.Caches().Get(r.URL.Query().Get("name"))
	if c == nil {
		codedError(w, errcode.With(errcode.NotFound, cache.ErrNotFound))
		return
	}
	writeJSON(w, cacheStats(c.Stats()))
}

func (s *Server) handleCacheDrop(w http.ResponseWriter, r *http.Request) {
	var req client.CacheRef
	if !readJSON(w, r, &req) {
		return
	}
	if err := s.node.Caches().Drop(req.Name); err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

func (s *Server) handleCacheGet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sp, err := s.openSpace(r, q.Get("space"))
	if err != nil {
		codedError(w, err)
		return
	}
	src, err := s.node.SpaceSource(sp.ID())
	if err != nil {
		codedError(w, err)
		return
	}
	c, err := s.node.Cache(r.Context(), src, cache.Options{})
	if err != nil {
		codedError(w, err)
		return
	}
	v, err := c.Get(r.Context(), q.Get("key"))
	if err != nil {
		codedError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(client.HeaderSize, strconv.Itoa(len(v)))
	_, _ = w.Write(v)
}
