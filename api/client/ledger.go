package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Amounts of credit are in millicredits: 1000 make a credit.

// LedgerInfo describes the credit ledger, as GET /api/v0/ledger/info
// returns it.
type LedgerInfo struct {
	ID       string    `json:"id"`
	Nodes    []string  `json:"nodes"`
	Leader   string    `json:"leader,omitempty"`
	Limit    int64     `json:"limit"`
	Created  time.Time `json:"created"`
	Seq      uint64    `json:"seq"`
	Accounts int       `json:"accounts"`
	Escrow   int64     `json:"escrow"`
	Reserves int       `json:"reserves"`
	// Sum is every balance plus the escrow: zero on a sound ledger.
	Sum int64 `json:"sum"`
	// Member is set when this node is a ledger node.
	Member bool `json:"member,omitempty"`
	// Founders are the users the ledger granted Limit to (none: a ledger
	// from before trust lines, where every account has it).
	Founders []string `json:"founders,omitempty"`
}

// Account is a user's account on the ledger. Its Limit is what the
// genesis Granted it plus the lines Vouched for it less those it is
// Vouching for others.
type Account struct {
	User      string        `json:"user"`
	Balance   int64         `json:"balance"`
	Reserved  int64         `json:"reserved"`
	Limit     int64         `json:"limit"`
	Available int64         `json:"available"`
	Granted   int64         `json:"granted,omitempty"`
	Vouched   int64         `json:"vouched,omitempty"`
	Vouching  int64         `json:"vouching,omitempty"`
	Lines     []TrustLine   `json:"lines,omitempty"` // to it, then from it
	History   []LedgerEntry `json:"history,omitempty"`
	Ledger    string        `json:"ledger"`
	Offer     *OfferTerms   `json:"offer,omitempty"` // with credit limits: what this node offers
}

// TrustLine is credit From answers for, that To may spend below zero.
type TrustLine struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Amount int64  `json:"amount"`
}

// LedgerEntry is one line of an account's history.
type LedgerEntry struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"` // transfer, reserve, settle, release, expire, storage, vouch
	Peer   string    `json:"peer,omitempty"`
	Amount int64     `json:"amount"`
	Memo   string    `json:"memo,omitempty"`
	Ref    string    `json:"ref,omitempty"`
}

// OfferTerms is what a node offers others, as nube up was told.
type OfferTerms struct {
	To              string   `json:"to"`
	Compute         bool     `json:"compute"`
	Storage         bool     `json:"storage"`
	Trusted         []string `json:"trusted,omitempty"`
	MinPrice        Price    `json:"min_price"`
	StoragePrice    uint64   `json:"storage_price"`
	MaxStoragePrice uint64   `json:"max_storage_price"`
	Jobs            int      `json:"jobs,omitempty"`
	Disk            int64    `json:"disk,omitempty"`
}

// LedgerRequest forms a ledger (Peers, Limit) or joins one (Via).
type LedgerRequest struct {
	Peers []string `json:"peers,omitempty"`
	Limit int64    `json:"limit,omitempty"`
	Via   string   `json:"via,omitempty"`
	// TimeoutMS bounds the create or join, in milliseconds. Zero means the
	// ledger's own deadline (two minutes).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// SendRequest is a transfer of credit.
type SendRequest struct {
	To     string `json:"to"`
	Amount int64  `json:"amount"`
	Memo   string `json:"memo,omitempty"`
}

// VouchRequest sets the trust line from the node's user to To.
type VouchRequest struct {
	To     string `json:"to"`
	Amount int64  `json:"amount"`
}

// Outcome is what the ledger did with a transaction.
type Outcome struct {
	Seq     uint64 `json:"seq"`
	Balance int64  `json:"balance"`
	// Payee is the user a transfer paid; Node, if set, is the node it was
	// named by, whose user Payee is.
	Payee string `json:"payee,omitempty"`
	Node  string `json:"node,omitempty"`
}

// LedgerCreate makes the node and peers the ledger's nodes, giving up
// after timeout (zero: the ledger's own deadline).
func (c *Client) LedgerCreate(ctx context.Context, peers []string, limit int64, timeout time.Duration) (LedgerInfo, error) {
	var out LedgerInfo
	return out, c.Call(ctx, http.MethodPost, "/api/v0/ledger/create", LedgerRequest{Peers: peers, Limit: limit, TimeoutMS: timeout.Milliseconds()}, &out)
}

// LedgerJoin makes the node a ledger node through via, giving up after
// timeout (zero: the ledger's own deadline).
func (c *Client) LedgerJoin(ctx context.Context, via string, timeout time.Duration) (LedgerInfo, error) {
	var out LedgerInfo
	return out, c.Call(ctx, http.MethodPost, "/api/v0/ledger/join", LedgerRequest{Via: via, TimeoutMS: timeout.Milliseconds()}, &out)
}

// LedgerInfo describes the ledger the node uses.
func (c *Client) LedgerInfo(ctx context.Context) (LedgerInfo, error) {
	var out LedgerInfo
	return out, c.Call(ctx, http.MethodGet, "/api/v0/ledger/info", nil, &out)
}

// CreditAccount returns user's account (empty: the node's user), with its
// history if history is set and the node's offer if offer is set.
func (c *Client) CreditAccount(ctx context.Context, user string, history, offer bool) (Account, error) {
	q := url.Values{}
	if user != "" {
		q.Set("user", user)
	}
	if history {
		q.Set("history", "1")
	}
	if offer {
		q.Set("offer", "1")
	}
	var out Account
	return out, c.Call(ctx, http.MethodGet, "/api/v0/credit/account?"+q.Encode(), nil, &out)
}

// CreditSend sends amount millicredits from the node's user to to.
func (c *Client) CreditSend(ctx context.Context, to string, amount int64, memo string) (Outcome, error) {
	var out Outcome
	return out, c.Call(ctx, http.MethodPost, "/api/v0/credit/send", SendRequest{To: to, Amount: amount, Memo: memo}, &out)
}

// CreditVouch sets the trust line from the node's user to user at amount
// millicredits (zero withdraws it).
func (c *Client) CreditVouch(ctx context.Context, user string, amount int64) (Outcome, error) {
	var out Outcome
	return out, c.Call(ctx, http.MethodPost, "/api/v0/credit/vouch", VouchRequest{To: user, Amount: amount}, &out)
}
