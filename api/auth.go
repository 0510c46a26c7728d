package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/internal/atomicfile"
)

// How long a login code and a browser session last, and how many of each
// the API keeps: a flood of login links cannot grow its memory.
const (
	loginCodeLife = 10 * time.Minute
	sessionLife   = 24 * time.Hour
	maxCodes      = 64
	maxSessions   = 64
)

// sessions holds the one-time login codes handed out and the browser
// sessions they opened. Neither is the API token, which never appears in a
// URL or a browser. A code is good for one login in one daemon run. A
// session lasts a day, across restarts of the daemon, so that an open page
// survives one: the data dir keeps the sessions' hashes (SessionsFile), not
// the cookies themselves.
type sessions struct {
	// cookie is the session cookie's name, unique to this node, so that
	// two daemons on one machine (cookies ignore ports) do not overwrite
	// each other's sessions.
	cookie string

	file string // where the sessions are kept; "" for memory only

	mu       sync.Mutex
	codes    map[string]time.Time // code -> when it expires
	sessions map[string]time.Time // SHA-256 of session, hex -> when it expires
	now      func() time.Time
}

// SessionsFile is the file in a node's data dir that keeps its browser
// sessions (their hashes) across restarts of the daemon.
const SessionsFile = "sessions.json"

// maxSessionsFile caps what newSessions reads back.
const maxSessionsFile = 64 << 10

func newSessions(nodeID, file string) *sessions {
	suffix := nodeID
	if len(suffix) > 12 {
		suffix = suffix[len(suffix)-12:]
	}
	a := &sessions{
		cookie:   "nube_session_" + suffix,
		file:     file,
		codes:    map[string]time.Time{},
		sessions: map[string]time.Time{},
		now:      time.Now,
	}
	a.load()
	return a
}

// load reads the sessions kept on disk; a missing or bad file is no
// sessions.
func (a *sessions) load() {
	if a.file == "" {
		return
	}
	f, err := os.Open(a.file)
	if err != nil {
		return
	}
	defer f.Close()
	var kept map[string]time.Time
	if json.NewDecoder(io.LimitReader(f, maxSessionsFile)).Decode(&kept) != nil {
		return
	}
	now := a.now()
	for h, at := range kept {
		if len(h) == 64 && now.Before(at) && len(a.sessions) < maxSessions {
			a.sessions[h] = at
		}
	}
}

// save writes the sessions to disk; a.mu is held.
func (a *sessions) save() {
	if a.file == "" {
		return
	}
	b, err := json.Marshal(a.sessions)
	if err == nil {
		err = atomicfile.Write(a.file, b, 0o600)
	}
	_ = err // a session not kept only means a login after the next restart
}

func hashSession(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// newCode returns a fresh one-time login code.
func (a *sessions) newCode() string {
	c := randomHex()
	a.mu.Lock()
	defer a.mu.Unlock()
	putCapped(a.codes, c, a.now().Add(loginCodeLife), maxCodes, a.now())
	return c
}

// redeem spends code and returns the session it opens, or "" if the code
// is unknown, spent or expired.
func (a *sessions) redeem(code string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	exp, ok := lookup(a.codes, code)
	if !ok {
		return ""
	}
	delete(a.codes, exp.key)
	if !now.Before(exp.at) {
		return ""
	}
	s := randomHex()
	putCapped(a.sessions, hashSession(s), now.Add(sessionLife), maxSessions, now)
	a.save()
	return s
}

// valid reports whether session is open.
func (a *sessions) valid(session string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if session == "" {
		return false
	}
	exp, ok := lookup(a.sessions, hashSession(session))
	return ok && a.now().Before(exp.at)
}

type expiry struct {
	key string
	at  time.Time
}

// lookup finds key in m comparing in constant time, so that timing tells
// an attacker nothing about how much of a guess was right.
func lookup(m map[string]time.Time, key string) (expiry, bool) {
	if key == "" {
		return expiry{}, false
	}
	for k, at := range m {
		if subtle.ConstantTimeCompare([]byte(k), []byte(key)) == 1 {
			return expiry{k, at}, true
		}
	}
	return expiry{}, false
}

// putCapped adds key to m, first dropping what has expired and, if m is
// still full, the entry that expires soonest.
func putCapped(m map[string]time.Time, key string, at time.Time, limit int, now time.Time) {
	for k, t := range m {
		if !now.Before(t) {
			delete(m, k)
		}
	}
	if len(m) >= limit {
		first := ""
		for k, t := range m {
			if first == "" || t.Before(m[first]) {
				first = k
			}
		}
		delete(m, first)
	}
	m[key] = at
}

func randomHex() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("api: crypto/rand failed: " + err.Error()) // cannot happen on supported platforms
	}
	return hex.EncodeToString(b)
}

// checkOrigin refuses, with 403, any request a browser says comes from
// another origin: another web site, a page on another port of this
// machine (another dev server, this node's gateway), or a sandboxed
// document. SameSite cookies stop only the first of those. Requests
// without the headers (the CLI, scripts) pass: they carry no cookie a page
// could borrow. A state-changing request that uses the session cookie
// must say where it comes from.
func (s *Server) checkOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The login page is the one page another origin may navigate
		// to: 'nube open' reaches it from a redirect page on disk (a
		// file: origin), so that the code never stands in a process's
		// arguments. It holds nothing and changes nothing; the code it
		// spends goes in a same-origin POST, checked below.
		if r.URL.Path == "/login" && r.Method == http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		if err := sameOrigin(r); err != nil {
			codedError(w, errcode.With(errcode.Forbidden, err))
			return
		}
		if !safeMethod(r.Method) && r.Header.Get("Authorization") == "" && r.Header.Get("Origin") == "" && r.Header.Get("Sec-Fetch-Site") == "" {
			if _, err := r.Cookie(s.auth.cookie); err == nil {
				codedError(w, errcode.With(errcode.Forbidden, errors.New("a browser request that changes state must carry an Origin header")))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin checks the Origin and Sec-Fetch-Site headers, where present,
// against the request's own origin. The Host header has been checked to
// be this API's address already.
func sameOrigin(r *http.Request) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none": // none: typed in, bookmarked, or opened from the terminal
	default:
		return fmt.Errorf("refused: a request from a %s page (Sec-Fetch-Site); the API takes requests only from its own pages", site)
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if o == "null" || err != nil || u.Scheme != "http" || !sameHostPort(u.Host, r.Host) {
		return fmt.Errorf("refused: a request from origin %q; the API takes requests only from its own pages", o)
	}
	return nil
}

// sameHostPort reports whether two host:port strings name the same
// place, case aside.
func sameHostPort(a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	return err1 == nil && err2 == nil && ap == bp && strings.EqualFold(ah, bh)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkAuth lets through requests that carry the token as a bearer token
// or an open session in the session cookie. Two need neither: the login
// page (GET /login, the link's code is in its fragment, which the browser
// never sends) and the exchange of a code for a session (POST
// /api/v0/session), which the login page makes.
func (s *Server) checkAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/login" && r.Method == http.MethodGet:
			s.serveUI(w, "login.html")
			return
		case r.URL.Path == "/ui/login.js" && r.Method == http.MethodGet:
			s.serveUI(w, "login.js")
			return
		case r.URL.Path == "/api/v0/session" && r.Method == http.MethodPost:
			s.handleSession(w, r)
			return
		}
		ok := false
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			ok = s.validToken(strings.TrimPrefix(a, "Bearer "))
		} else if c, err := r.Cookie(s.auth.cookie); err == nil {
			ok = s.auth.valid(c.Value)
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="nube"`)
			codedError(w, errcode.With(errcode.Unauthorized, errors.New("missing or wrong API token (it is in the data dir's api.token file); in a browser, open the link 'nube up' or 'nube open' prints")))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) validToken(t string) bool {
	return t != "" && subtle.ConstantTimeCompare([]byte(t), []byte(s.token)) == 1
}

// handleSession spends a one-time login code (POST /api/v0/session
// {"code": C}) and answers with the session cookie.
func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	var req client.SessionRequest
	if !readJSON(w, r, &req) {
		return
	}
	session := s.auth.redeem(req.Code)
	if session == "" {
		codedError(w, errcode.With(errcode.Unauthorized, errors.New("this login link was used already or has expired; get a fresh one with 'nube open'")))
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.auth.cookie, Value: session, Path: "/",
		MaxAge: int(sessionLife / time.Second), HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	w.WriteHeader(http.StatusNoContent)
}

// LoginPage is a page that sends a browser on to link, a login link: 'nube
// open' writes it into a file only its user may read and hands the browser
// the file's name, so that the code is never in a command line, where any
// user of the machine can read it. It sends no referrer.
func LoginPage(link string) []byte {
	l := html.EscapeString(link)
	return []byte(`<!doctype html>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="0;url=` + l + `">
<title>nube: logging in</title>
<p>Logging in to the dashboard… If nothing happens, <a href="` + l + `">follow this link</a>.</p>
`)
}

func (s *Server) handleLoginLink(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, client.LoginLink{URL: s.LoginURL()})
}
