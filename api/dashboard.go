package api

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/topic"
)

// The dashboard is one page and two files, embedded: no build step, no
// third-party script. It reads the node's state from a stream of
// server-sent events (/api/v0/events) and the slower-moving lists from
// /api/v0/dashboard, and acts through the API like any other client.
//
//go:embed dashboard
var dashboardFS embed.FS

// dashboardCSP lets the page run its own script and style and talk to its
// own origin, and nothing else.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

// eventEvery is how often the event stream sends the node's state, and
// how often the traffic history takes a sample.
const eventEvery = 2 * time.Second

// historyLen is how many traffic samples the history keeps: five minutes.
const historyLen = 150

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	s.serveUI(w, "index.html")
}

func (s *Server) handleUI(w http.ResponseWriter, r *http.Request) {
	s.serveUI(w, r.PathValue("file"))
}

func (s *Server) serveUI(w http.ResponseWriter, name string) {
	if strings.Contains(name, "/") {
		http.NotFound(w, nil)
		return
	}
	b, err := fs.ReadFile(dashboardFS, "dashboard/"+name)
	if err != nil {
		http.NotFound(w, nil)
		return
	}
	types := map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	w.Header().Set("Content-Type", types[path.Ext(name)])
	w.Header().Set("Content-Security-Policy", dashboardCSP)
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}

// trafficSample is one point of the traffic chart.
type trafficSample struct {
	At      int64   `json:"t"`   // Unix ms
	RateIn  float64 `json:"in"`  // bytes per second
	RateOut float64 `json:"out"` // bytes per second
}

// history keeps the last samples of the node's traffic, for a page that
// opens to see the minutes before it.
type history struct {
	mu      sync.Mutex
	samples []trafficSample
}

func (h *history) add(t nube.Traffic, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, trafficSample{At: at.UnixMilli(), RateIn: t.RateIn, RateOut: t.RateOut})
	if len(h.samples) > historyLen {
		h.samples = append(h.samples[:0], h.samples[len(h.samples)-historyLen:]...)
	}
}

func (h *history) get() []trafficSample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]trafficSample{}, h.samples...)
}

// sample takes a traffic sample every eventEvery until the server closes.
func (s *Server) sample() {
	defer s.wg.Done()
	t := time.NewTicker(eventEvery)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			s.traffic.add(s.node.Sys().Traffic(), now)
		case <-s.done:
			return
		}
	}
}

// dashState is what the event stream sends every eventEvery.
type dashState struct {
	Status  nube.Status     `json:"status"`
	Peers   []nube.PeerInfo `json:"peers"`
	Known   []string        `json:"known"` // the DHT's routing table
	Traffic nube.Traffic    `json:"traffic"`
	Offers  dashOffers      `json:"offers"`
}

// dashOffers is what the node offers others.
type dashOffers struct {
	Compute bool `json:"compute"`
	Relay   bool `json:"relay"`
}

func (s *Server) state() dashState {
	st := dashState{Status: s.node.Status(), Peers: s.node.Peers(), Traffic: s.node.Sys().Traffic(), Known: []string{}}
	st.Offers = dashOffers{Compute: s.node.Services().Computes(), Relay: st.Status.RelayService}
	if st.Peers == nil {
		st.Peers = []nube.PeerInfo{}
	}
	for _, p := range s.node.Sys().DHT().RoutingTable().ListPeers() {
		st.Known = append(st.Known, p.String())
	}
	return st
}

// handleEvents streams the node's state as server-sent events: the traffic
// history once, then the state every eventEvery. The page's EventSource
// reconnects by itself when the stream ends (the daemon restarted).
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		codedError(w, fmt.Errorf("streaming unsupported"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	send := func(event string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
		fl.Flush()
		return err == nil
	}
	fmt.Fprint(w, "retry: 2000\n\n")
	if !send("history", s.traffic.get()) {
		return
	}
	t := time.NewTicker(eventEvery)
	defer t.Stop()
	for send("state", s.state()) {
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}

// dashPin is a pinned root with its size.
type dashPin struct {
	CID     string    `json:"cid"`
	Name    string    `json:"name,omitempty"`
	Size    int64     `json:"size"`
	Dir     bool      `json:"dir,omitempty"`
	Created time.Time `json:"created"`
}

// dashLists is what GET /api/v0/dashboard returns: the lists that change
// when someone acts, not by the second.
type dashLists struct {
	Pins     []dashPin             `json:"pins"`
	Services []client.ServiceInfo  `json:"services"`
	Runs     []client.RunRecord    `json:"runs"`
	Calls    []dashCall            `json:"calls"`
	Groups   []client.GroupStatus  `json:"groups"`
	Spaces   []client.SpaceSummary `json:"spaces"`
	Topics   []dashTopic           `json:"topics"`
	Jobs     []client.JobStatus    `json:"jobs"`
}

// dashJobs caps the jobs one load lists, newest first.
const dashJobs = 50

// dashTopic is a topic this node owns, holds or subscribes to: its counts
// (the page turns them into rates between two loads) and, for a durable
// one whose info came in time, its offsets and consumers.
type dashTopic struct {
	client.TopicSummary
	Info *client.TopicInfo `json:"info,omitempty"`
	// InfoError says why a durable topic has no info.
	InfoError string `json:"info_error,omitempty"`
}

// dashTopicInfos caps how many durable topics' infos one load asks for,
// and dashTopicWait how long it waits for them all: an info may ask the
// holders.
const (
	dashTopicInfos = 20
	dashTopicWait  = 3 * time.Second
)

// topicsForDashboard lists the node's topics, with the infos of the first
// durable ones.
func (s *Server) topicsForDashboard(ctx context.Context) []dashTopic {
	out := []dashTopic{}
	ctx, cancel := context.WithTimeout(ctx, dashTopicWait)
	defer cancel()
	asked := 0
	for _, sum := range topicSummaries(s.node.Topics().List()) {
		d := dashTopic{TopicSummary: sum}
		if sum.Durable && sum.Role != "subscriber" && asked < dashTopicInfos {
			asked++
			t, err := s.openTopic(ctx, sum.ID)
			var info topic.Info
			if err == nil {
				info, err = t.Info(ctx)
			}
			if err != nil {
				d.InfoError = err.Error()
			} else {
				ti := topicInfoJSON(info)
				d.Info = &ti
			}
		}
		out = append(out, d)
	}
	return out
}

// dashCall is a call this node made.
type dashCall struct {
	At      time.Time     `json:"at"`
	Service string        `json:"service"`
	Peer    string        `json:"peer"`
	Usage   client.Usage  `json:"usage"`
	Elapsed time.Duration `json:"elapsed"`
	Error   string        `json:"error,omitempty"`
	Cost    int64         `json:"cost,omitempty"` // millicredits
}

func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	out := dashLists{Pins: []dashPin{}, Services: []client.ServiceInfo{}, Runs: []client.RunRecord{}, Calls: []dashCall{}, Groups: []client.GroupStatus{},
		Spaces: spaceSummaries(s.node.Spaces().List()), Topics: s.topicsForDashboard(ctx), Jobs: []client.JobStatus{}}
	for _, st := range s.node.Jobs().List() {
		if len(out.Jobs) == dashJobs {
			break
		}
		out.Jobs = append(out.Jobs, jobStatusJSON(st))
	}
	pins, err := s.node.Content().Pins(ctx)
	if err != nil {
		codedError(w, err)
		return
	}
	for _, p := range pins {
		d := dashPin{CID: p.CID.String(), Name: p.Name, Created: p.Created}
		if e, err := s.node.Content().Stat(ctx, d.CID); err == nil {
			d.Size, d.Dir = int64(e.Size), e.Kind == content.KindDir
		}
		out.Pins = append(out.Pins, d)
	}
	for _, in := range s.node.Services().Known("") {
		out.Services = append(out.Services, serviceInfo(in))
	}
	runs := s.node.Services().Runs()
	for i := len(runs) - 1; i >= 0 && len(out.Runs) < 50; i-- {
		out.Runs = append(out.Runs, runRecordJSON(runs[i]))
	}
	calls := s.node.Services().Calls()
	for i := len(calls) - 1; i >= 0 && len(out.Calls) < 50; i-- {
		c := calls[i]
		out.Calls = append(out.Calls, dashCall{At: c.At, Service: c.Service, Peer: c.Peer.String(), Usage: client.Usage(c.Usage), Elapsed: c.Elapsed, Error: c.Error, Cost: c.Cost})
	}
	for _, name := range s.node.Groups().List() {
		g, err := s.node.Groups().Open(ctx, name, group.Options{})
		if err != nil {
			continue
		}
		st, err := g.Status(ctx)
		if err != nil {
			continue
		}
		out.Groups = append(out.Groups, groupStatusJSON(st))
	}
	writeJSON(w, out)
}

// fetchLine is one line of POST /api/v0/fetch's answer.
type fetchLine struct {
	Bytes  int64         `json:"bytes"`
	Blocks int           `json:"blocks"`
	Peers  []fetchPeer   `json:"peers"`
	Done   bool          `json:"done,omitempty"`
	CID    string        `json:"cid,omitempty"`
	Error  *client.Error `json:"error,omitempty"`
}

// fetchPeer is how much one provider sent during a fetch.
type fetchPeer struct {
	Peer  string `json:"peer"`
	Bytes int64  `json:"bytes"`
}

// handleFetch pins a CID, fetching what is missing from every provider at
// once, and streams its progress as lines of JSON: bytes and blocks so far
// and what each provider sent, four times a second, then the result.
func (s *Server) handleFetch(w http.ResponseWriter, r *http.Request) {
	c, err := content.ParseCID(strings.TrimPrefix(r.URL.Query().Get("cid"), "/ipfs/"))
	if err != nil {
		codedError(w, errcode.With(errcode.BadRequest, err))
		return
	}
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/x-ndjson")
	start := map[string]int64{}
	for _, st := range s.node.Content().Received() {
		start[st.Peer.String()] = st.Bytes
	}
	var mu sync.Mutex
	var prog content.FetchProgress
	line := func() fetchLine {
		mu.Lock()
		l := fetchLine{Bytes: prog.Bytes, Blocks: prog.Blocks, Peers: []fetchPeer{}}
		mu.Unlock()
		for _, st := range s.node.Content().Received() {
			if d := st.Bytes - start[st.Peer.String()]; d > 0 {
				l.Peers = append(l.Peers, fetchPeer{Peer: st.Peer.String(), Bytes: d})
			}
		}
		return l
	}
	enc := json.NewEncoder(w)
	done := make(chan error, 1)
	go func() {
		done <- s.node.Content().Pin(r.Context(), c, r.URL.Query().Get("name"), func(p content.FetchProgress) {
			mu.Lock()
			prog = p
			mu.Unlock()
		})
	}()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			enc.Encode(line())
			if fl != nil {
				fl.Flush()
			}
		case err := <-done:
			l := line()
			l.Done, l.CID = true, c.String()
			if err != nil {
				l.Error = &client.Error{Code: string(errcode.Of(err)), Message: err.Error()}
			}
			enc.Encode(l)
			return
		}
	}
}
