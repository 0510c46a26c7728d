package client

import (
	"context"
	"net/http"
	"time"
)

// UserInvite is a one-time invite for another node to join this node's
// user, as POST /api/v0/user/invite returns it. Invite is its text, to
// give 'nube user join' or 'nube up --join-user'.
type UserInvite struct {
	Invite  string    `json:"invite"`
	User    string    `json:"user"`
	Peer    string    `json:"peer"`
	Expires time.Time `json:"expires"`
}

// UserNode is one of the user's nodes, as GET /api/v0/user/nodes lists
// them.
type UserNode struct {
	ID      string     `json:"id"`
	User    string     `json:"user"`
	Since   time.Time  `json:"since"`
	Self    bool       `json:"self,omitempty"`
	Key     bool       `json:"key,omitempty"`
	Removed *time.Time `json:"removed,omitempty"`
	// Restart is set when a join needs the node restarted to take effect.
	Restart bool `json:"restart,omitempty"`
}

// UserRequest is the body of the user endpoints that take one.
type UserRequest struct {
	TTLMS  int64  `json:"ttl_ms,omitempty"` // invite: how long it is good for
	Invite string `json:"invite,omitempty"` // join
	Node   string `json:"node,omitempty"`   // remove
}

// UserInvite makes a one-time invite, good for ttl (zero: the node's
// default, ten minutes).
func (c *Client) UserInvite(ctx context.Context, ttl time.Duration) (UserInvite, error) {
	var out UserInvite
	return out, c.Call(ctx, http.MethodPost, "/api/v0/user/invite", UserRequest{TTLMS: ttl.Milliseconds()}, &out)
}

// UserJoin makes the node one of the user's nodes that the invite names.
func (c *Client) UserJoin(ctx context.Context, invite string) (UserNode, error) {
	var out UserNode
	return out, c.Call(ctx, http.MethodPost, "/api/v0/user/join", UserRequest{Invite: invite}, &out)
}

// UserNodes lists the user's nodes the node knows, itself first.
func (c *Client) UserNodes(ctx context.Context) ([]UserNode, error) {
	var out []UserNode
	return out, c.Call(ctx, http.MethodGet, "/api/v0/user/nodes", nil, &out)
}

// UserRemove revokes a node's cert and tells the user's nodes.
func (c *Client) UserRemove(ctx context.Context, node string) (UserNode, error) {
	var out UserNode
	return out, c.Call(ctx, http.MethodPost, "/api/v0/user/remove", UserRequest{Node: node}, &out)
}
