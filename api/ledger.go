package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/ledger"
)

// Ledger and credit endpoints (amounts in millicredits):
//
//	POST /api/v0/ledger/create  {peers, limit, timeout_ms} → LedgerInfo
//	POST /api/v0/ledger/join    {via, timeout_ms}          → LedgerInfo
//	GET  /api/v0/ledger/info                        → LedgerInfo
//	GET  /api/v0/credit/account?user=U&history=1&offer=1 → Account
//	POST /api/v0/credit/send    {to, amount, memo}  → Outcome
//	POST /api/v0/credit/vouch   {to, amount}        → Outcome
func (s *Server) ledgerRoutes(mux *router) {
	mux.HandleFunc("POST /api/v0/ledger/create", s.handleLedgerCreate)
	mux.HandleFunc("POST /api/v0/ledger/join", s.handleLedgerJoin)
	mux.HandleFunc("GET /api/v0/ledger/info", s.handleLedgerInfo)
	mux.HandleFunc("GET /api/v0/credit/account", s.handleCreditAccount)
	mux.HandleFunc("POST /api/v0/credit/send", s.handleCreditSend)
	mux.HandleFunc("POST /api/v0/credit/vouch", s.handleCreditVouch)
}

func ledgerInfoJSON(in ledger.Info) client.LedgerInfo {
	out := client.LedgerInfo{ID: in.ID, Limit: in.Limit, Created: in.Created, Seq: in.Seq,
		Accounts: in.Accounts, Escrow: in.Escrow, Reserves: in.Reserves, Sum: in.Sum, Member: in.Member, Nodes: []string{}}
	if in.Leader != "" {
		out.Leader = in.Leader.String()
	}
	for _, p := range in.Nodes {
		out.Nodes = append(out.Nodes, p.String())
	}
	for _, u := range in.Founders {
		out.Founders = append(out.Founders, u.String())
	}
	return out
}

// ledgerDeadline bounds a create or join by the request's timeout, if it
// gives one (else the ledger's own deadline holds).
func ledgerDeadline(ctx context.Context, ms int64) (context.Context, context.CancelFunc) {
	if ms <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
}

func (s *Server) handleLedgerCreate(w http.ResponseWriter, r *http.Request) {
	var req client.LedgerRequest
	if !readJSON(w, r, &req) {
		return
	}
	peers, err := parsePeers(req.Peers)
	if err != nil {
		codedError(w, err)
		return
	}
	ctx, cancel := ledgerDeadline(r.Context(), req.TimeoutMS)
	defer cancel()
	in, err := s.node.Ledger().Create(ctx, req.Limit, peers...)
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, ledgerInfoJSON(in))
}

func (s *Server) handleLedgerJoin(w http.ResponseWriter, r *http.Request) {
	var req client.LedgerRequest
	if !readJSON(w, r, &req) {
		return
	}
	via, err := parsePeers([]string{req.Via})
	if err != nil {
		codedError(w, err)
		return
	}
	ctx, cancel := ledgerDeadline(r.Context(), req.TimeoutMS)
	defer cancel()
	in, err := s.node.Ledger().Join(ctx, via[0])
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, ledgerInfoJSON(in))
}

func (s *Server) handleLedgerInfo(w http.ResponseWriter, r *http.Request) {
	in, err := s.node.Ledger().Info(r.Context())
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, ledgerInfoJSON(in))
}

func (s *Server) handleCreditAccount(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var user peer.ID
	if u := q.Get("user"); u != "" {
		var err error
		if user, err = peer.Decode(u); err != nil {
			codedError(w, fmt.Errorf("%w: user %q is not a user ID: %v", errcode.ErrBadRequest, u, err))
			return
		}
	}
	a, err := s.node.Ledger().Account(r.Context(), user)
	if err != nil {
		codedError(w, err)
		return
	}
	out := client.Account{User: a.User.String(), Balance: a.Balance, Reserved: a.Reserved, Limit: a.Limit, Available: a.Available, Ledger: a.Ledger,
		Granted: a.Granted, Vouched: a.Vouched, Vouching: a.Vouching}
	for _, l := range a.Lines {
		out.Lines = append(out.Lines, client.TrustLine{From: l.From.String(), To: l.To.String(), Amount: l.Amount})
	}
	if q.Get("history") != "" {
		out.History = []client.LedgerEntry{}
		for _, e := range a.History {
			le := client.LedgerEntry{Seq: e.Seq, Time: e.Time, Kind: e.Kind, Amount: e.Amount, Memo: e.Memo, Ref: e.Ref}
			if e.Peer != "" {
				le.Peer = e.Peer.String()
			}
			out.History = append(out.History, le)
		}
	}
	if q.Get("offer") != "" {
		o := s.node.Config().Offer
		terms := &client.OfferTerms{To: o.To, Compute: !o.NoCompute && s.node.Services().Computes(), Storage: !s.node.Config().NoStorage,
			MinPrice: client.Price(o.MinPrice), StoragePrice: o.StoragePrice, MaxStoragePrice: o.MaxStoragePrice, Jobs: o.Jobs, Disk: o.Disk}
		if terms.To == "" {
			terms.To = "own"
		}
		if terms.MaxStoragePrice == 0 {
			terms.MaxStoragePrice = ledger.DefaultMaxStoragePrice
		}
		for _, u := range o.Users {
			terms.Trusted = append(terms.Trusted, u.String())
		}
		out.Offer = terms
	}
	writeJSON(w, out)
}

func (s *Server) handleCreditSend(w http.ResponseWriter, r *http.Request) {
	var req client.SendRequest
	if !readJSON(w, r, &req) {
		return
	}
	to, err := peer.Decode(req.To)
	if err != nil {
		codedError(w, fmt.Errorf("%w: %q is not a user ID: %v", errcode.ErrBadRequest, req.To, err))
		return
	}
	o, err := s.node.Ledger().Send(r.Context(), to, req.Amount, req.Memo)
	if err != nil {
		codedError(w, err)
		return
	}
	out := client.Outcome{Seq: o.Seq, Balance: o.Balance, Payee: o.Payee.String()}
	if o.Node != "" {
		out.Node = o.Node.String()
	}
	writeJSON(w, out)
}

func (s *Server) handleCreditVouch(w http.ResponseWriter, r *http.Request) {
	var req client.VouchRequest
	if !readJSON(w, r, &req) {
		return
	}
	to, err := peer.Decode(req.To)
	if err != nil {
		codedError(w, fmt.Errorf("%w: %q is not a user ID: %v", errcode.ErrBadRequest, req.To, err))
		return
	}
	o, err := s.node.Ledger().Vouch(r.Context(), to, req.Amount)
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, client.Outcome{Seq: o.Seq, Balance: o.Balance})
}
