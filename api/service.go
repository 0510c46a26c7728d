package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/wasm"
)

// Service endpoints:
//
//	POST /api/v0/service/publish?name=N&version=V&desc=T&input=&output=&memory=BYTES&timeout=D&price_call=&price_cpu=[&want=W...][&deterministic=1]
//	     body: the .wasm module                      → ServiceInfo
//	GET  /api/v0/service/ls?q=WORDS                  → []ServiceInfo (searches connected peers)
//	GET  /api/v0/service/info?ref=NAME|CID           → ServiceInfo
//	GET  /api/v0/service/runs                        → []RunRecord (runs this node did)
//	POST /api/v0/call?ref=PIPELINE&n=N&timeout=D&memory=BYTES[&on=PEER...][&allow=RIGHT...][&near=CID|OWNER/NAME][&out_cid=1][&verify=K][&budget=MC]
//	     body: the input                             → one CallResult per line (NDJSON), as each node answers

func serviceInfo(in service.Info) client.ServiceInfo {
	d := in.Descriptor
	s := client.ServiceInfo{
		CID: d.ID().String(), Name: d.Name, Version: d.Version, Description: d.Description,
		Input: d.Input, Output: d.Output, Price: client.Price(d.Price),
		Publisher: d.Publisher.String(), Created: d.Created,
		Wants: d.Wants, Deterministic: d.Deterministic,
		Limits: client.LimitsJSON{Memory: d.Limits.Memory, TimeoutMS: d.Limits.Timeout.Milliseconds(), MaxInput: d.Limits.MaxInput, MaxOutput: d.Limits.MaxOutput},
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
		codedError(w, errcode.With(errcode.BadRequest, err))
		return
	}
	opt := service.PublishOptions{
		Name: q.Get("name"), Version: q.Get("version"), Description: q.Get("desc"),
		Input: q.Get("input"), Output: q.Get("output"), Limits: lim,
		Wants: q["want"], Deterministic: q.Get("deterministic") == "1",
	}
	for key, dst := range map[string]*uint64{"price_call": &opt.Price.PerCall, "price_cpu": &opt.Price.PerCPUSecond} {
		if v := q.Get(key); v != "" {
			if *dst, err = strconv.ParseUint(v, 10, 64); err != nil {
				codedError(w, errcode.With(errcode.BadRequest, fmt.Errorf("%s %q: want a whole number of millicredits", key, v)))
				return
			}
		}
	}
	d, err := s.node.Services().Publish(r.Context(), r.Body, opt)
	if err != nil {
		codedError(w, errcode.With(errcode.BadRequest, err))
		return
	}
	writeJSON(w, serviceInfo(service.Info{Descriptor: d, Runners: []peer.ID{s.node.ID()}}))
}

func (s *Server) handleServiceLs(w http.ResponseWriter, r *http.Request) {
	found, err := s.node.Services().Find(r.Context(), r.URL.Query().Get("q"))
	if err != nil && r.Context().Err() != nil {
		codedError(w, errcode.With(errcode.Timeout, err))
		return
	}
	out := []client.ServiceInfo{}
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
		codedError(w, err)
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
	out := []client.RunRecord{}
	for _, r := range s.node.Services().Runs() {
		out = append(out, runRecordJSON(r))
	}
	writeJSON(w, out)
}

// runRecordJSON is a run as the API gives it.
func runRecordJSON(r service.Record) client.RunRecord {
	return client.RunRecord{
		At: r.At, Service: r.Service, Descriptor: r.Descriptor.String(), Module: r.Module.String(),
		Caller: r.Caller.String(), Usage: client.Usage(r.Usage), Cold: r.Cold, Error: r.Error, Earned: r.Earned,
		Allowed: r.Allowed, Depth: r.Depth, Touched: (*client.Touched)(r.Touched),
	}
}

// maxCallInput caps a call's input through the API, as the run limits do.
const maxCallInput = 64 << 20

func (s *Server) handleCall(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lim, err := parseLimits(q)
	if err != nil {
		codedError(w, errcode.With(errcode.BadRequest, err))
		return
	}
	n := 1
	if v := q.Get("n"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 64 {
			codedError(w, errcode.With(errcode.BadRequest, fmt.Errorf("n %q: want 1 to 64 nodes", v)))
			return
		}
	}
	in, err := io.ReadAll(io.LimitReader(r.Body, maxCallInput+1))
	if err != nil {
		codedError(w, errcode.With(errcode.BadRequest, fmt.Errorf("read input: %w", err)))
		return
	}
	if len(in) > maxCallInput {
		codedError(w, errcode.With(errcode.TooLarge, fmt.Errorf("input is over %d bytes", maxCallInput)))
		return
	}
	pipe := s.node.Service(q.Get("ref")).WithLimits(lim)
	if on := q["on"]; len(on) > 0 {
		var peers []peer.ID
		for _, v := range on {
			p, err := peer.Decode(v)
			if err != nil {
				codedError(w, errcode.With(errcode.BadRequest, fmt.Errorf("on: bad peer ID %q: %w", v, err)))
				return
			}
			peers = append(peers, p)
		}
		pipe = pipe.On(peers...)
	}
	for _, a := range q["allow"] {
		right, err := service.ParseAllow(a)
		if err != nil {
			codedError(w, err)
			return
		}
		pipe = pipe.Allow(right)
	}
	if near := q.Get("near"); near != "" {
		pipe = pipe.Near(near)
	}
	if v := q.Get("out_cid"); v != "" && v != "0" && v != "false" {
		pipe = pipe.OutCID()
	}
	if v := q.Get("budget"); v != "" {
		b, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			codedError(w, errcode.With(errcode.BadRequest, fmt.Errorf("budget %q: want a whole number of millicredits", v)))
			return
		}
		pipe = pipe.Budget(b)
	}
	verify := 0
	if v := q.Get("verify"); v != "" {
		if verify, err = strconv.Atoi(v); err != nil || verify < 2 || verify > 16 {
			codedError(w, errcode.With(errcode.BadRequest, fmt.Errorf("verify %q: want 2 to 16 nodes", v)))
			return
		}
	}
	cached := false
	if v := q.Get("cached"); v != "" && v != "0" && v != "false" {
		if n > 1 {
			codedError(w, errcode.With(errcode.BadRequest, errors.New("cached: a memoized call is one call, not n")))
			return
		}
		cached = true
		pipe = pipe.Cached()
		if verify > 0 {
			// Another user's record counts once verify runs agree
			// with it.
			pipe, verify = pipe.CachedVerify(verify), 0
		}
	}
	// Resolve first, so that an unknown service is a plain HTTP error.
	if _, err := pipe.Resolve(r.Context()); err != nil {
		codedError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	results := pipe.CallN(r.Context(), n, in)
	if verify > 0 {
		results = verified(r.Context(), pipe, verify, in)
	}
	for _, res := range results {
		cr := callResult(res)
		if cached && res.Memo != nil && res.Err == nil {
			cr.Memo = res.Memo.Runner.String()
		}
		if verify > 0 && res.Err == nil {
			cr.Verified = verify
		}
		var ve *service.VerifyError
		if errors.As(res.Err, &ve) {
			for _, run := range ve.Runs {
				cr.Runs = append(cr.Runs, client.VerifyRun{Peer: run.Peer.String(), Hash: run.Hash, Proof: run.Proof, Error: run.Err})
			}
		}
		if err := enc.Encode(cr); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// verified runs a verified call as a sequence of its one result.
func verified(ctx context.Context, pipe *service.Pipeline, k int, in []byte) iter.Seq2[peer.ID, service.Result] {
	return func(yield func(peer.ID, service.Result) bool) {
		res, err := pipe.Verify(ctx, k, in)
		if err != nil {
			res.Err = err
		}
		yield(res.Peer, res)
	}
}

// callResult is a call's result as the API gives it.
func callResult(res service.Result) client.CallResult {
	cr := client.CallResult{Peer: res.Peer.String(), Output: res.Output, Usage: client.Usage(res.Usage), Cold: res.Cold,
		ElapsedMS: float64(res.Elapsed.Microseconds()) / 1000, Cost: res.Cost, Near: res.Near}
	if res.OutputCID.Defined() {
		cr.OutputCID = res.OutputCID.String()
	}
	if res.Err != nil {
		cr.Error = res.Err.Error()
		var run *service.RunError
		if errors.As(res.Err, &run) {
			cr.Kind = run.Kind
			if run.Exit != nil {
				cr.ExitCode = run.Exit.Code
			}
		}
	}
	return cr
}
