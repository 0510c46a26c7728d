package client

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// GroupStatus is a replicated group's state, as GET /api/v0/group/status
// returns it.
type GroupStatus struct {
	Name      string        `json:"name"`
	Leader    string        `json:"leader,omitempty"`
	Term      uint64        `json:"term"`
	LastIndex uint64        `json:"last_index"`
	Commit    uint64        `json:"commit_index"`
	Applied   uint64        `json:"applied_index"`
	State     string        `json:"state"` // this node's role: leader, follower, candidate
	Members   []GroupMember `json:"members"`
}

// GroupMember is one member as the leader sees it.
type GroupMember struct {
	ID          string    `json:"id"`
	Voter       bool      `json:"voter"`
	State       string    `json:"state"` // leader, up, down, or unknown when no leader answers
	LastContact time.Time `json:"last_contact,omitzero"`
}

// GroupEntry is a key of a group's map. Value is base64 in JSON.
type GroupEntry struct {
	Key     string `json:"key"`
	Value   []byte `json:"value"`
	Version uint64 `json:"version"`
}

// GroupRequest names a group and, for create, its other members; for join,
// the member to join through; for add and remove, the member.
type GroupRequest struct {
	Name    string   `json:"name"`
	Members []string `json:"members,omitempty"`
	Via     string   `json:"via,omitempty"`
	Peer    string   `json:"peer,omitempty"`
}

// GroupCAS is a compare-and-swap: Old nil means the key must be absent.
type GroupCAS struct {
	Name  string `json:"name"`
	Key   string `json:"key"`
	Old   []byte `json:"old"`
	Value []byte `json:"value"`
}

// GroupResult says whether a compare-and-swap swapped or a delete deleted.
type GroupResult struct {
	OK      bool   `json:"ok"`
	Version uint64 `json:"version,omitempty"`
}

// GroupCreate forms the group name from the node and members.
func (c *Client) GroupCreate(ctx context.Context, name string, members []string) (GroupStatus, error) {
	var out GroupStatus
	return out, c.Call(ctx, http.MethodPost, "/api/v0/group/create", GroupRequest{Name: name, Members: members}, &out)
}

// GroupJoin joins the group name through its member via.
func (c *Client) GroupJoin(ctx context.Context, name, via string) (GroupStatus, error) {
	var out GroupStatus
	return out, c.Call(ctx, http.MethodPost, "/api/v0/group/join", GroupRequest{Name: name, Via: via}, &out)
}

// GroupsList lists the groups the node keeps (Groups().List); GroupList
// lists one group's keys.
func (c *Client) GroupsList(ctx context.Context) ([]string, error) {
	var out []string
	return out, c.Call(ctx, http.MethodGet, "/api/v0/group/list", nil, &out)
}

// GroupStatus returns the group's state.
func (c *Client) GroupStatus(ctx context.Context, name string) (GroupStatus, error) {
	var out GroupStatus
	return out, c.Call(ctx, http.MethodGet, "/api/v0/group/status?name="+url.QueryEscape(name), nil, &out)
}

// GroupAdd adds peer to the group as a member.
func (c *Client) GroupAdd(ctx context.Context, name, peer string) error {
	return c.Call(ctx, http.MethodPost, "/api/v0/group/add", GroupRequest{Name: name, Peer: peer}, nil)
}

// GroupRemove takes peer out of the group.
func (c *Client) GroupRemove(ctx context.Context, name, peer string) error {
	return c.Call(ctx, http.MethodPost, "/api/v0/group/remove", GroupRequest{Name: name, Peer: peer}, nil)
}

// GroupGet reads key (linearizably).
func (c *Client) GroupGet(ctx context.Context, name, key string) (GroupEntry, error) {
	var out GroupEntry
	q := url.Values{"name": {name}, "key": {key}}
	return out, c.Call(ctx, http.MethodGet, "/api/v0/group/get?"+q.Encode(), nil, &out)
}

// GroupList reads the keys of the group name that start with prefix
// (Group.List); GroupsList lists the groups. An empty name is refused.
func (c *Client) GroupList(ctx context.Context, name, prefix string) ([]GroupEntry, error) {
	var out []GroupEntry
	if name == "" {
		return nil, errors.New("group list: no group named (GroupsList lists the groups)")
	}
	q := url.Values{"name": {name}, "prefix": {prefix}}
	return out, c.Call(ctx, http.MethodGet, "/api/v0/group/list?"+q.Encode(), nil, &out)
}

// GroupPut sets key to value.
func (c *Client) GroupPut(ctx context.Context, name, key string, value []byte) (GroupResult, error) {
	var out GroupResult
	q := url.Values{"name": {name}, "key": {key}}
	return out, c.send(ctx, http.MethodPost, "/api/v0/group/put?"+q.Encode(), "application/octet-stream", bytes.NewReader(value), &out)
}

// GroupCompareAndSwap sets key to value if it is old now (absent if old
// is nil).
func (c *Client) GroupCompareAndSwap(ctx context.Context, name, key string, old, value []byte) (GroupResult, error) {
	var out GroupResult
	return out, c.Call(ctx, http.MethodPost, "/api/v0/group/compare-and-swap", GroupCAS{Name: name, Key: key, Old: old, Value: value}, &out)
}

// GroupDelete removes key from the group's map.
func (c *Client) GroupDelete(ctx context.Context, name, key string) (GroupResult, error) {
	var out GroupResult
	return out, c.Call(ctx, http.MethodPost, "/api/v0/group/delete", GroupCAS{Name: name, Key: key}, &out)
}
