package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// SpacePolicy says where a space lives besides its home.
type SpacePolicy struct {
	Local    bool     `json:"local,omitempty"`
	On       []string `json:"on,omitempty"`
	Replicas int      `json:"replicas,omitempty"`
	// Public, at create, stores the values unsealed (space.Policy.Public);
	// a migration keeps what the space was created with.
	Public bool `json:"public,omitempty"`
}

// SpaceCreate asks for a new space.
type SpaceCreate struct {
	Name string `json:"name"`
	SpacePolicy
}

// SpaceSummary is one space a node keeps, as GET /api/v0/space/list
// answers.
type SpaceSummary struct {
	ID      string `json:"id"`
	Owner   string `json:"owner"`
	Name    string `json:"name"`
	Role    string `json:"role"`
	Seq     uint64 `json:"seq"`
	Keys    uint64 `json:"keys"`
	Bytes   uint64 `json:"bytes"`
	Policy  string `json:"policy"`
	Holders int    `json:"holders"`
}

// SpaceHolder is one holder's state.
type SpaceHolder struct {
	Peer  string `json:"peer"`
	State string `json:"state"`
	Seq   uint64 `json:"seq,omitempty"`
}

// SpaceGrantInfo describes a grant filed with a space's home.
type SpaceGrantInfo struct {
	ID     string    `json:"id"`
	To     string    `json:"to"`
	Issuer string    `json:"issuer"`
	Rights string    `json:"rights"`
	Until  time.Time `json:"until,omitzero"`
}

// SpaceInfo describes a space, as GET /api/v0/space/info answers.
type SpaceInfo struct {
	ID      string           `json:"id"`
	Owner   string           `json:"owner"`
	Name    string           `json:"name"`
	Seq     uint64           `json:"seq"`
	Root    string           `json:"root"`
	Home    string           `json:"home"`
	Policy  SpacePolicy      `json:"policy"`
	Holders []SpaceHolder    `json:"holders"`
	Epoch   uint64           `json:"epoch"`
	Keys    uint64           `json:"keys"`
	Bytes   uint64           `json:"bytes"`
	Readers []string         `json:"readers"`
	Grants  []SpaceGrantInfo `json:"grants,omitempty"`
	Revoked []string         `json:"revoked,omitempty"`
	Updated time.Time        `json:"updated"`
	Deleted bool             `json:"deleted,omitempty"`
}

// SpaceItem is one key of a listing.
type SpaceItem struct {
	Key    string    `json:"key"`
	Size   uint64    `json:"size"`
	Time   time.Time `json:"time"`
	Writer string    `json:"writer"`
}

// SpaceEvent is one change a watch reports; Error ends the watch.
type SpaceEvent struct {
	Seq   uint64    `json:"seq"`
	Op    string    `json:"op"`
	Key   string    `json:"key"`
	Time  time.Time `json:"time"`
	Error string    `json:"error,omitempty"`
}

// SpaceRef names a space ([OWNER/]NAME) and, for some calls, a key or a
// grant.
type SpaceRef struct {
	Space string `json:"space"`
	Key   string `json:"key,omitempty"`
	Grant string `json:"grant,omitempty"`
}

// SpaceHomeRequest asks the home of Space to hand it to the node To,
// another node of the same user.
type SpaceHomeRequest struct {
	Space string `json:"space"`
	To    string `json:"to"`
}

// SpaceGrantRequest asks for a grant.
type SpaceGrantRequest struct {
	Space    string    `json:"space"`
	User     string    `json:"user"`
	Read     bool      `json:"read,omitempty"`
	Write    bool      `json:"write,omitempty"`
	Delegate bool      `json:"delegate,omitempty"`
	Until    time.Time `json:"until,omitzero"`
}

// SpaceGrant is a grant made.
type SpaceGrant struct {
	ID     string    `json:"id"`
	Token  string    `json:"token"`
	To     string    `json:"to"`
	Rights string    `json:"rights"`
	Until  time.Time `json:"until,omitzero"`
}

// SpaceMigrate asks to place a space anew.
type SpaceMigrate struct {
	Space string `json:"space"`
	SpacePolicy
}

// SpaceProgress is a line of a migration's progress; the last has Done
// set with no Holder, or Error.
type SpaceProgress struct {
	Holder string `json:"holder,omitempty"`
	Blocks int    `json:"blocks"`
	Bytes  int64  `json:"bytes"`
	Total  int64  `json:"total"`
	Done   bool   `json:"done,omitempty"`
	Error  string `json:"error,omitempty"`
}

// SpaceHolding is a space a node holds for another user.
type SpaceHolding struct {
	Space string    `json:"space"`
	Seq   uint64    `json:"seq"`
	Root  string    `json:"root"`
	Keys  uint64    `json:"keys"`
	Bytes uint64    `json:"bytes"`
	Since time.Time `json:"since"`
}

// SpaceCreate makes a space owned by the node's user.
func (c *Client) SpaceCreate(ctx context.Context, req SpaceCreate) (SpaceInfo, error) {
	var out SpaceInfo
	return out, c.Call(ctx, http.MethodPost, "/api/v0/space/create", req, &out)
}

// SpacesList lists the spaces the node is home of or holds
// (Spaces().List); SpaceList lists one space's keys.
func (c *Client) SpacesList(ctx context.Context) ([]SpaceSummary, error) {
	var out []SpaceSummary
	return out, c.Call(ctx, http.MethodGet, "/api/v0/space/list", nil, &out)
}

// SpaceHoldings lists the spaces the node holds for others.
func (c *Client) SpaceHoldings(ctx context.Context) ([]SpaceHolding, error) {
	var out []SpaceHolding
	return out, c.Call(ctx, http.MethodGet, "/api/v0/space/holdings", nil, &out)
}

// SpaceInfo describes a space.
func (c *Client) SpaceInfo(ctx context.Context, space string) (SpaceInfo, error) {
	var out SpaceInfo
	return out, c.Call(ctx, http.MethodGet, "/api/v0/space/info?"+url.Values{"space": {space}}.Encode(), nil, &out)
}

// SpacePut sets key to the bytes of r.
func (c *Client) SpacePut(ctx context.Context, space, key string, r io.Reader) error {
	q := url.Values{"space": {space}, "key": {key}}
	return c.send(ctx, http.MethodPost, "/api/v0/space/put?"+q.Encode(), "application/octet-stream", r, nil)
}

// SpaceGet opens key's value; Size is its length.
func (c *Client) SpaceGet(ctx context.Context, space, key string) (*Download, error) {
	q := url.Values{"space": {space}, "key": {key}}
	resp, err := c.do(ctx, http.MethodGet, "/api/v0/space/get?"+q.Encode(), "", nil)
	if err != nil {
		return nil, err
	}
	d := &Download{ReadCloser: resp.Body, Size: -1}
	if n, err := strconv.ParseInt(resp.Header.Get(HeaderSize), 10, 64); err == nil {
		d.Size = n
	}
	return d, nil
}

// SpaceList lists the keys of space that start with prefix (Space.List);
// SpacesList lists the spaces. An empty space is refused.
func (c *Client) SpaceList(ctx context.Context, space, prefix string) ([]SpaceItem, error) {
	var out []SpaceItem
	if space == "" {
		return nil, errors.New("space list: no space named (SpacesList lists the spaces)")
	}
	q := url.Values{"space": {space}, "prefix": {prefix}}
	return out, c.Call(ctx, http.MethodGet, "/api/v0/space/list?"+q.Encode(), nil, &out)
}

// SpaceDelete removes key from the space, and only it (SpaceDestroy
// removes the whole space).
func (c *Client) SpaceDelete(ctx context.Context, space, key string) error {
	return c.Call(ctx, http.MethodPost, "/api/v0/space/delete", SpaceRef{Space: space, Key: key}, nil)
}

// SpaceDestroy removes the whole space, every key in it.
func (c *Client) SpaceDestroy(ctx context.Context, space string) error {
	return c.Call(ctx, http.MethodPost, "/api/v0/space/destroy", SpaceRef{Space: space}, nil)
}

// SpaceGrant grants a user rights on a space.
func (c *Client) SpaceGrant(ctx context.Context, req SpaceGrantRequest) (SpaceGrant, error) {
	var out SpaceGrant
	return out, c.Call(ctx, http.MethodPost, "/api/v0/space/grant", req, &out)
}

// SpaceRevoke ends a grant.
func (c *Client) SpaceRevoke(ctx context.Context, space, grant string) error {
	return c.Call(ctx, http.MethodPost, "/api/v0/space/revoke", SpaceRef{Space: space, Grant: grant}, nil)
}

// SpaceHome hands the home of space to the node to (a peer ID), another
// node of the same user, and returns the space as it is after. It runs on
// the home.
func (c *Client) SpaceHome(ctx context.Context, space, to string) (SpaceInfo, error) {
	var out SpaceInfo
	return out, c.Call(ctx, http.MethodPost, "/api/v0/space/home", SpaceHomeRequest{Space: space, To: to}, &out)
}

// SpaceMigrate places a space anew, yielding progress as it goes.
func (c *Client) SpaceMigrate(ctx context.Context, req SpaceMigrate) iter.Seq2[SpaceProgress, error] {
	return ndjson[SpaceProgress](ctx, c, http.MethodPost, "/api/v0/space/migrate", req)
}

// SpaceWatch yields a space's changes as they happen, until ctx ends.
func (c *Client) SpaceWatch(ctx context.Context, space string) iter.Seq2[SpaceEvent, error] {
	return ndjson[SpaceEvent](ctx, c, http.MethodGet, "/api/v0/space/watch?"+url.Values{"space": {space}}.Encode(), nil)
}

// ndjson calls an endpoint that answers with one JSON document a line.
func ndjson[T any](ctx context.Context, c *Client, method, path string, in any) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		var body io.Reader
		ct := ""
		if in != nil {
			b, err := json.Marshal(in)
			if err != nil {
				yield(zero, err)
				return
			}
			body, ct = bytes.NewReader(b), "application/json"
		}
		resp, err := c.do(ctx, method, path, ct, body)
		if err != nil {
			yield(zero, err)
			return
		}
		defer resp.Body.Close()
		dec := json.NewDecoder(bufio.NewReader(resp.Body))
		for {
			var v T
			if err := dec.Decode(&v); err != nil {
				if err != io.EOF {
					yield(zero, err)
				}
				return
			}
			if !yield(v, nil) {
				return
			}
		}
	}
}
