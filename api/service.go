package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/wasm"
)

// Service endpoints:
//
//	POST /api/v0/service/publish?name=N&version=V&desc=T&input=&output=&memory=BYTES&timeout=D&price_call=&price_cpu=
//	     body: the .wasm module                      → ServiceInfo
//	GET  /api/v0/service/ls?q=WORDS                  → []ServiceInfo (searches connected peers)
//	GET  /api/v0/service/info?ref=NAME|CID           → ServiceInfo
//	GET  /api/v0/service/runs                        → []service.Record (runs this node did)
//	POST /api/v0/call?ref=PIPELINE&n=N&timeout=D&memory=BYTES[&on=PEER...]
//	     body: the input                             → one CallResult per line (NDJSON), as each node answers

// ServiceInfo is a service descriptor as the API shows it.
type ServiceInfo struct {
	CID         string        `json:"cid"`
	Name        string        `json:"name"`
	Version     string        `json:"version,omitempty"`
	Description string        `json:"description,omitempty"`
	Module      string        `json:"module,omitempty"`
	Stages      []string      `json:"stages,omitempty"`
	Input       string        `json:"input,omitempty"`
	Output      string        `json:"output,omitempty"`
	Limits      LimitsJSON    `json:"limits"`
	Price       service.Price `json:"price"`
	Publisher   string        `json:"publisher"`
	Created     time.Time     `json:"created"`
	// Runners are nodes seen with the module ready to run.
	Runners []string `json:"runners,omitempty"`
}

// LimitsJSON are run limits; zero means the node's default.
type LimitsJSON struct {
	Memory    int64 `json:"memory_bytes,omitempty"`
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	MaxInput  int64 `json:"max_input_bytes,omitempty"`
	MaxOutput int64 `json:"max_output_bytes,omitempty"`
}

func serviceInfo(in service.Info) ServiceInfo {
	d := in.Descriptor
	s := ServiceInfo{
		CID: d.ID().String(), Name: d.Name, Version: d.Version, Description: d.Description,
		Input: d.Input, Output: d.Output, Price: d.Price,
		Publisher: d.Publisher.String(), Created: d.Created,
		Limits: LimitsJSON{Memory: d.Limits.Memory, TimeoutMS: d.Limits.Timeout.Milliseconds(), MaxInput: d.Limits.MaxInput, MaxOutput: d.Limits.MaxOutput},
	}
	if d.Module.Defined() {
		s.Module = d.Module.String()
	}
	for _, c := range d.Stages {
		s.Stages = append(s.Stages, c.String())
	}
	for _, p := range in.Runners {
		s.Runners = append(s.Runners, p.String())
	}
	return s
}

// CallResult is one node's answer to a call.
type CallResult struct {
	Peer      string     `json:"peer,omitempty"`
	Output    []byte     `json:"output,omitempty"` // base64 in JSON
	Usage     wasm.Usage `json:"usage"`
	ElapsedMS float64    `json:"elapsed_ms"`
	Cold      bool       `json:"cold,omitempty"`
	Error     string     `json:"error,omitempty"`
}

// parseLimits reads memory (bytes) and timeout (a Go duration) from q.
func parseLimits(q url.Values) (wasm.Limits, error) {
	var l wasm.Limits
	if s := q.Get("memory"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return l, fmt.Errorf("memory %q: want a number of bytes", s)
		}
		l.Memory = n
	}
	if s := q.Get("timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return l, fmt.Errorf("timeout %q: want a duration such as 30s", s)
		}
		l.Timeout = d
	}
	return l, nil
}

func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lim, err := parseLimits(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	opt := service.PublishOptions{
		Name: q.Get("name"), Version: q.Get("version"), Description: q.Get("desc"),
		Input: q.Get("input"), Output: q.Get("output"), Limits: lim,
	}
	for key, dst := range map[string]*uint64{"price_call": &opt.Price.PerCall, "price_cpu": &opt.Price.PerCPUSecond} {
		if v := q.Get(key); v != "" {
			if *dst, err = strconv.ParseUint(v, 10, 64); err != nil {
				writeError(w, http.StatusBadRequest, fmt.Errorf("%s %q: want a whole number of millicredits", key, v))
				return
			}
		}
	}
	d, err := s.node.Services().Publish(r.Context(), r.Body, opt)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, serviceInfo(service.Info{Descriptor: d, Runners: []peer.ID{s.node.ID()}}))
}

func (s *Server) handleServiceLs(w http.ResponseWriter, r *http.Request) {
	found, err := s.node.Services().Find(r.Context(), r.URL.Query().Get("q"))
	if err != nil && r.Context().Err() != nil {
		writeError(w, http.StatusGatewayTimeout, err)
		return
	}
	out := []ServiceInfo{}
	for _, in := range found {
		out = append(out, serviceInfo(in))
	}
	writeJSON(w, out)
}

func (s *Server) handleServiceInfo(w http.ResponseWriter, r *http.Request) {
	ref := r.URL.Query().Get("ref")
	m := s.node.Services()
	d, err := m.Resolve(r.Context(), ref)
	if err != nil {
		writeError(w, serviceStatus(err), err)
		return
	}
	// Ask the peers again who has it ready, then report what is known.
	m.Find(r.Context(), d.ID().String())
	for _, in := range m.Known(d.ID().String()) {
		writeJSON(w, serviceInfo(in))
		return
	}
	writeJSON(w, serviceInfo(service.Info{Descriptor: d}))
}

func (s *Server) handleServiceRuns(w http.ResponseWriter, r *http.Request) {
	runs := s.node.Services().Runs()
	if runs == nil {
		runs = []service.Record{}
	}
	writeJSON(w, runs)
}

func serviceStatus(err error) int {
	switch {
	case errors.Is(err, service.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, service.ErrAmbiguous), errors.Is(err, service.ErrBadDescriptor):
		return http.StatusConflict
	}
	return http.StatusBadGateway
}

// maxCallInput caps a call's input through the API, as the run limits do.
const maxCallInput = 64 << 20

func (s *Server) handleCall(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lim, err := parseLimits(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	n := 1
	if v := q.Get("n"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 64 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("n %q: want 1 to 64 nodes", v))
			return
		}
	}
	in, err := io.ReadAll(io.LimitReader(r.Body, maxCallInput+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("read input: %w", err))
		return
	}
	if len(in) > maxCallInput {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("input is over %d bytes", maxCallInput))
		return
	}
	pipe := s.node.Service(q.Get("ref")).WithLimits(lim)
	if on := q["on"]; len(on) > 0 {
		var peers []peer.ID
		for _, v := range on {
			p, err := peer.Decode(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Errorf("on: bad peer ID %q: %w", v, err))
				return
			}
			peers = append(peers, p)
		}
		pipe = pipe.On(peers...)
	}
	// Resolve first, so that an unknown service is a plain HTTP error.
	if _, err := pipe.Resolve(r.Context()); err != nil {
		writeError(w, serviceStatus(err), err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	for _, res := range pipe.CallN(r.Context(), n, in) {
		cr := CallResult{Peer: res.Peer.String(), Output: res.Output, Usage: res.Usage, Cold: res.Cold,
			ElapsedMS: float64(res.Elapsed.Microseconds()) / 1000}
		if res.Err != nil {
			cr.Error = res.Err.Error()
		}
		if err := enc.Encode(cr); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// Publish publishes the module read from body as a service.
func (c *Client) Publish(ctx context.Context, body io.Reader, opt service.PublishOptions) (ServiceInfo, error) {
	q := url.Values{"name": {opt.Name}, "version": {opt.Version}, "desc": {opt.Description}, "input": {opt.Input}, "output": {opt.Output}}
	if opt.Limits.Memory > 0 {
		q.Set("memory", strconv.FormatInt(opt.Limits.Memory, 10))
	}
	if opt.Limits.Timeout > 0 {
		q.Set("timeout", opt.Limits.Timeout.String())
	}
	if opt.Price.PerCall > 0 {
		q.Set("price_call", strconv.FormatUint(opt.Price.PerCall, 10))
	}
	if opt.Price.PerCPUSecond > 0 {
		q.Set("price_cpu", strconv.FormatUint(opt.Price.PerCPUSecond, 10))
	}
	var out ServiceInfo
	return out, c.send(ctx, http.MethodPost, "/api/v0/service/publish?"+q.Encode(), "application/wasm", body, &out)
}

// ServiceLs searches the network for services matching query.
func (c *Client) ServiceLs(ctx context.Context, query string) ([]ServiceInfo, error) {
	var out []ServiceInfo
	return out, c.Call(ctx, http.MethodGet, "/api/v0/service/ls?q="+url.QueryEscape(query), nil, &out)
}

// ServiceInfo describes the service ref names.
func (c *Client) ServiceInfo(ctx context.Context, ref string) (ServiceInfo, error) {
	var out ServiceInfo
	return out, c.Call(ctx, http.MethodGet, "/api/v0/service/info?ref="+url.QueryEscape(ref), nil, &out)
}

// ServiceRuns lists the runs the node did for callers.
func (c *Client) ServiceRuns(ctx context.Context) ([]service.Record, error) {
	var out []service.Record
	return out, c.Call(ctx, http.MethodGet, "/api/v0/service/runs", nil, &out)
}

// CallService runs the pipeline ref on n nodes (among on, if given) with
// input in and calls each with every node's result as it arrives.
func (c *Client) CallService(ctx context.Context, ref string, n int, on []string, lim wasm.Limits, in io.Reader, each func(CallResult) error) error {
	q := url.Values{"ref": {ref}, "n": {strconv.Itoa(n)}, "on": on}
	if lim.Memory > 0 {
		q.Set("memory", strconv.FormatInt(lim.Memory, 10))
	}
	if lim.Timeout > 0 {
		q.Set("timeout", lim.Timeout.String())
	}
	resp, err := c.do(ctx, http.MethodPost, "/api/v0/call?"+q.Encode(), "application/octet-stream", in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4*maxCallInput)
	for sc.Scan() {
		var r CallResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("decode call result: %w", err)
		}
		if err := each(r); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read call results: %w", err)
	}
	return nil
}
