package api

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/nubecloud/nube/nubetest"
)

// TestOpenAPIRoutes holds the hand-written OpenAPI document to the routes
// the API serves: every route registered is in the document, and every
// path and method the document names is a route. The daemon serves the
// document itself, with its token like the rest.
func TestOpenAPIRoutes(t *testing.T) {
	c := nubetest.Cluster(t, 1)
	s := &Server{node: c.Node(0)}
	served := map[string]bool{} // "get /api/v0/id"
	for _, p := range append(s.routes().patterns, authRoutes...) {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			t.Fatalf("route %q has no method: every route names the one it takes", p)
		}
		served[strings.ToLower(method)+" "+strings.TrimSuffix(path, "{$}")] = true
	}

	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json says openapi %q, want 3.x", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			var o struct {
				Summary   string         `json:"summary"`
				Responses map[string]any `json:"responses"`
			}
			if err := json.Unmarshal(op, &o); err != nil || o.Summary == "" || len(o.Responses) == 0 {
				t.Errorf("openapi.json: %s %s has no summary or no responses (%v)", method, path, err)
			}
			documented = append(documented, method+" "+path)
			if !served[method+" "+path] {
				t.Errorf("openapi.json documents %s %s, which the API does not serve", strings.ToUpper(method), path)
			}
		}
	}
	for route := range served {
		if !slices.ContainsFunc(documented, func(d string) bool { return templateMatch(d, route) }) {
			t.Errorf("the API serves %s, which openapi.json does not document", route)
		}
	}

	// Served, behind the token.
	token := NewToken()
	srv, err := Listen(c.Node(0), "127.0.0.1:0", token, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, tok := range []string{"", token} {
		req, _ := http.NewRequest("GET", srv.URL()+"/api/v0/openapi.json", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case tok == "" && resp.StatusCode != http.StatusUnauthorized:
			t.Errorf("openapi.json without the token: %d, want 401", resp.StatusCode)
		case tok != "" && (resp.StatusCode != http.StatusOK || string(body) != string(openAPIDoc) || resp.Header.Get("Content-Type") != "application/json"):
			t.Errorf("openapi.json: %d %s, want the embedded document as JSON", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

// templateMatch reports whether route ("get /ui/login.js") is one of those
// doc ("get /ui/{file}") describes: a {name} segment stands for any one.
func templateMatch(doc, route string) bool {
	ds, rs := strings.Split(doc, "/"), strings.Split(route, "/")
	if len(ds) != len(rs) {
		return false
	}
	for i := range ds {
		if ds[i] != rs[i] && !(strings.HasPrefix(ds[i], "{") && strings.HasSuffix(ds[i], "}")) {
			return false
		}
	}
	return true
}
