package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// maxCallResult caps one line of a call's answer: a result of up to the
// largest output a run may give, in base64.
const maxCallResult = 64 << 20

// Publish publishes the module read from body as a service.
func (c *Client) Publish(ctx context.Context, body io.Reader, opt PublishOptions) (ServiceInfo, error) {
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
	q["want"] = opt.Wants
	if opt.Deterministic {
		q.Set("deterministic", "1")
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
func (c *Client) ServiceRuns(ctx context.Context) ([]RunRecord, error) {
	var out []RunRecord
	return out, c.Call(ctx, http.MethodGet, "/api/v0/service/runs", nil, &out)
}

// CallService runs the pipeline ref on n nodes (among on, if given) with
// input in and calls each with every node's result as it arrives.
func (c *Client) CallService(ctx context.Context, ref string, n int, on []string, lim Limits, in io.Reader, each func(CallResult) error) error {
	return c.CallWith(ctx, ref, CallOptions{N: n, On: on, Limits: lim}, in, each)
}

// CallWith runs the pipeline ref as opt says, with input in, and calls
// each with every result as it arrives (one for a verified call).
func (c *Client) CallWith(ctx context.Context, ref string, opt CallOptions, in io.Reader, each func(CallResult) error) error {
	n := max(opt.N, 1)
	q := url.Values{"ref": {ref}, "n": {strconv.Itoa(n)}, "on": opt.On, "allow": opt.Allow}
	lim := opt.Limits
	if lim.Memory > 0 {
		q.Set("memory", strconv.FormatInt(lim.Memory, 10))
	}
	if lim.Timeout > 0 {
		q.Set("timeout", lim.Timeout.String())
	}
	if opt.Near != "" {
		q.Set("near", opt.Near)
	}
	if opt.OutCID {
		q.Set("out_cid", "1")
	}
	if opt.Verify > 0 {
		q.Set("verify", strconv.Itoa(opt.Verify))
	}
	if opt.Cached {
		q.Set("cached", "1")
	}
	if opt.Budget > 0 {
		q.Set("budget", strconv.FormatUint(opt.Budget, 10))
	}
	resp, err := c.do(ctx, http.MethodPost, "/api/v0/call?"+q.Encode(), "application/octet-stream", in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4*maxCallResult)
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

// RemoteLs lists the functions peer serves to the node.
func (c *Client) RemoteLs(ctx context.Context, peer string) (FunctionsResult, error) {
	var out FunctionsResult
	return out, c.Call(ctx, http.MethodGet, "/api/v0/remote/ls?peer="+url.QueryEscape(peer), nil, &out)
}
