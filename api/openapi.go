package api

import (
	_ "embed"
	"net/http"
)

// The API describes itself: GET /api/v0/openapi.json answers an OpenAPI 3
// document of every route it serves, for code generators and API
// explorers. The document is written by hand (openapi.json, embedded), so
// it says what each route is for in words, as the README does; the routes
// are counted as they are registered (router), and TestOpenAPIRoutes fails
// when a route is served that the document lacks, or the document names
// one that is not served.

//go:embed openapi.json
var openAPIDoc []byte

func handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDoc)
}

// router is the API's ServeMux, keeping the pattern of every route
// registered on it ("GET /api/v0/id").
type router struct {
	*http.ServeMux
	patterns []string
}

func newRouter() *router { return &router{ServeMux: http.NewServeMux()} }

// HandleFunc registers h for pattern, as http.ServeMux's does.
func (r *router) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	r.ServeMux.HandleFunc(pattern, h)
	r.patterns = append(r.patterns, pattern)
}

// Handle registers h for pattern, as http.ServeMux's does.
func (r *router) Handle(pattern string, h http.Handler) {
	r.ServeMux.Handle(pattern, h)
	r.patterns = append(r.patterns, pattern)
}

// authRoutes are the routes checkAuth serves itself, before any token is
// asked for: the login page, its script, and the exchange of a login code
// for a session.
var authRoutes = []string{"GET /login", "GET /ui/login.js", "POST /api/v0/session"}
