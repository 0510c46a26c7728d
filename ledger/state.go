package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/internal/wire"
)

// Errors a caller can tell apart with errors.Is, on any node: the ledger
// sends its own code for each across the wire.
var (
	// ErrMalformed: a transaction or receipt that does not decode or
	// breaks a rule of its shape.
	ErrMalformed = errcode.New(errcode.BadRequest, "malformed ledger transaction")
	// ErrTooLarge: over MaxTxSize.
	ErrTooLarge = errcode.New(errcode.TooLarge, "ledger transaction too large")
	// ErrForged: a signature that does not verify, or a cert that does
	// not make the node its user's.
	ErrForged = errcode.New(errcode.Refused, "ledger signature does not verify")
	// ErrReplay: a transaction whose nonce the ledger has applied.
	ErrReplay = errcode.New(errcode.Conflict, "ledger transaction already applied")
	// ErrStale: a transaction or receipt whose time is too far from the
	// ledger's clock.
	ErrStale = errcode.New(errcode.Refused, "ledger transaction outside the time window")
	// ErrInsufficient: the payment would take the account past its
	// credit limit.
	ErrInsufficient = errcode.New(errcode.Refused, "over the credit limit")
	// ErrNoReserve: a receipt or release for a reserve the ledger never
	// held (or that expired and went back to its payer).
	ErrNoReserve = errcode.New(errcode.NotFound, "no such reserve")
	// ErrSettled: a receipt or reserve that was settled already.
	ErrSettled = errcode.New(errcode.Conflict, "receipt already settled")
	// ErrBadReceipt: a receipt whose figures do not hold: another payer
	// or node than its reserve's, an amount that is not what its usage
	// costs at the reserve's price, more than was reserved, or more than
	// the payer's node was told.
	ErrBadReceipt = errcode.New(errcode.Refused, "receipt does not hold")
	// ErrNoLedger: no ledger node could be found or reached.
	ErrNoLedger = errcode.New(errcode.Unreachable, "no ledger reachable")
	// ErrRefused: the node will not do this for this caller: it does not
	// trust it with the ledger.
	ErrRefused = errcode.New(errcode.Refused, "refused by the node's offer")
	// ErrImpostor: an answer for the ledger that is not the ledger's: not
	// signed by one of the members this node knows, or of another ledger.
	ErrImpostor = errcode.New(errcode.Refused, "not the ledger this node knows")
	// ErrUnknownPayee: a payee that is neither an account the ledger
	// knows nor a node that says whose it is.
	ErrUnknownPayee = errcode.New(errcode.NotFound, "no such payee")
)

// codes name the sentinels on the wire.
var codes = map[string]error{
	"malformed": ErrMalformed, "too_large": ErrTooLarge, "forged": ErrForged,
	"replay": ErrReplay, "stale": ErrStale, "insufficient": ErrInsufficient,
	"no_reserve": ErrNoReserve, "settled": ErrSettled, "bad_receipt": ErrBadReceipt,
	"refused": ErrRefused, "no_ledger": ErrNoLedger, "impostor": ErrImpostor, "unknown_payee": ErrUnknownPayee,
}

func codeOf(err error) string {
	for c, e := range codes {
		if errors.Is(err, e) {
			return c
		}
	}
	return "internal"
}

// errorOf rebuilds an error from its code and message.
func errorOf(code, msg string) error {
	if code == "" {
		return nil
	}
	if e, ok := codes[code]; ok {
		return &codedErr{sentinel: e, msg: msg}
	}
	return errors.New(msg)
}

type codedErr struct {
	sentinel error
	msg      string
}

func (e *codedErr) Error() string { return e.msg }
func (e *codedErr) Unwrap() error { return e.sentinel }

// Operations of the ledger's log.
const (
	opGenesis = iota + 1
	opTx
	opTick
)

// command is one entry of the ledger's log. Time is the clock of the
// member that proposed it: every member judges windows and expiries by it,
// so all reach the same state.
type command struct {
	Op      uint8    `cbor:"1,keyasint"`
	Time    int64    `cbor:"2,keyasint"`
	Tx      []byte   `cbor:"3,keyasint,omitempty"`
	Genesis *Genesis `cbor:"4,keyasint,omitempty"`
}

// outcome is what applying a command gave.
type outcome struct {
	Code    string `cbor:"1,keyasint,omitempty"`
	Msg     string `cbor:"2,keyasint,omitempty"`
	Seq     uint64 `cbor:"3,keyasint,omitempty"`
	Balance int64  `cbor:"4,keyasint,omitempty"` // the debited account's, after
	Amount  int64  `cbor:"5,keyasint,omitempty"` // a settlement's: paid to the payee
	// Leader is the ledger's leader as the node that answered knows it
	// (set by that node, not by the state machine): the node to ask next.
	Leader peer.ID `cbor:"6,keyasint,omitempty"`
}

// Genesis is the ledger's first entry: its ID and the credit limit every
// account starts with.
type Genesis struct {
	ID      string `cbor:"1,keyasint" json:"id"`
	Created int64  `cbor:"2,keyasint" json:"created"`
	Limit   int64  `cbor:"3,keyasint" json:"limit"` // millicredits
}

// Entry is one line of an account's history.
type Entry struct {
	Seq  uint64    `cbor:"1,keyasint" json:"seq"`
	Time time.Time `cbor:"2,keyasint" json:"time"`
	Kind string    `cbor:"3,keyasint" json:"kind"` // transfer, reserve, settle, release, expire, storage
	// Peer is the other account: the payee of a payment, the payer of
	// an income.
	Peer peer.ID `cbor:"4,keyasint,omitempty" json:"peer,omitempty"`
	// Amount is what the entry did to the balance: negative for a debit.
	Amount int64  `cbor:"5,keyasint" json:"amount"`
	Memo   string `cbor:"6,keyasint,omitempty" json:"memo,omitempty"`
	Ref    string `cbor:"7,keyasint,omitempty" json:"ref,omitempty"` // the transaction's or reserve's ID
}

// maxHistory is how many entries the ledger keeps per account.
const maxHistory = 256

type account struct {
	Balance  int64   `cbor:"1,keyasint"`
	Reserved int64   `cbor:"2,keyasint,omitempty"`
	History  []Entry `cbor:"3,keyasint,omitempty"`
}

type reserve struct {
	Payer    peer.ID `cbor:"1,keyasint"`
	Provider peer.ID `cbor:"2,keyasint"`
	Max      int64   `cbor:"3,keyasint"`
	Price    Price   `cbor:"4,keyasint"`
	Expires  int64   `cbor:"5,keyasint"`
}

// state is the whole ledger. The escrow account holds what reserves took,
// so balances and escrow together always sum to zero.
type state struct {
	Genesis  *Genesis             `cbor:"1,keyasint,omitempty"`
	Accounts map[peer.ID]*account `cbor:"2,keyasint"`
	Escrow   int64                `cbor:"3,keyasint"`
	Reserves map[string]reserve   `cbor:"4,keyasint"`
	Closed   map[string]int64     `cbor:"5,keyasint"` // settled receipt IDs, by time
	Nonces   map[string]int64     `cbor:"6,keyasint"` // applied nonces, by time
	Seq      uint64               `cbor:"7,keyasint"`
}

func newState() *state {
	return &state{Accounts: map[peer.ID]*account{}, Reserves: map[string]reserve{}, Closed: map[string]int64{}, Nonces: map[string]int64{}}
}

// machine is the ledger's group.StateMachine.
type machine struct {
	mu sync.Mutex
	s  *state
	// changed is closed and replaced after each apply.
	changed chan struct{}
	// checked holds the hashes of transactions whose signatures this
	// node checked at its door, so that it does not check them again as
	// it applies them; the outcome is the same either way.
	checked map[[32]byte]struct{}
	order   [][32]byte
}

// maxChecked bounds the transactions remembered as checked.
const maxChecked = 1 << 14

func newMachine() *machine {
	return &machine{s: newState(), changed: make(chan struct{}), checked: map[[32]byte]struct{}{}}
}

// markChecked remembers that tx's signatures verified here.
func (m *machine) markChecked(tx []byte) {
	h := sha256.Sum256(tx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.order) == maxChecked {
		delete(m.checked, m.order[0])
		m.order = m.order[1:]
	}
	m.checked[h] = struct{}{}
	m.order = append(m.order, h)
}

// takeChecked reports whether tx was checked here, and forgets it; m.mu
// is held.
func (m *machine) takeChecked(tx []byte) bool {
	if len(tx) == 0 {
		return false
	}
	h := sha256.Sum256(tx)
	_, ok := m.checked[h]
	delete(m.checked, h)
	return ok
}

// Apply applies one command. It never returns an error: a refused
// transaction is an outcome, and leaves the state as it was.
func (m *machine) Apply(b []byte) ([]byte, error) {
	var c command
	var o outcome
	if err := wire.Unmarshal(b, &c); err != nil {
		o = outcome{Code: "malformed", Msg: fmt.Sprintf("ledger command: %v", err)}
	} else {
		m.mu.Lock()
		o = m.s.apply(&c, m.takeChecked(c.Tx))
		close(m.changed)
		m.changed = make(chan struct{})
		m.mu.Unlock()
	}
	return wire.Marshal(&o)
}

// Snapshot returns the state's encoding.
func (m *machine) Snapshot() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return wire.Marshal(m.s)
}

// Restore replaces the state with a snapshot's.
func (m *machine) Restore(b []byte) error {
	s := newState()
	if err := wire.Unmarshal(b, s); err != nil {
		return fmt.Errorf("ledger snapshot: %w", err)
	}
	if s.Accounts == nil {
		s.Accounts = map[peer.ID]*account{}
	}
	if s.Reserves == nil {
		s.Reserves = map[string]reserve{}
	}
	if s.Closed == nil {
		s.Closed = map[string]int64{}
	}
	if s.Nonces == nil {
		s.Nonces = map[string]int64{}
	}
	m.mu.Lock()
	m.s = s
	m.mu.Unlock()
	return nil
}

// view runs f on the state under the lock.
func (m *machine) view(f func(*state)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m.s)
}

// Sum returns the sum of every balance and the escrow: zero, always.
func (s *state) Sum() int64 {
	sum := s.Escrow
	for _, a := range s.Accounts {
		sum += a.Balance
	}
	return sum
}

func (s *state) limit() int64 {
	if s.Genesis == nil {
		return 0
	}
	return s.Genesis.Limit
}

func (s *state) acct(u peer.ID) *account {
	a := s.Accounts[u]
	if a == nil {
		a = &account{}
		s.Accounts[u] = a
	}
	return a
}

func (s *state) note(u peer.ID, e Entry) {
	a := s.acct(u)
	e.Seq = s.Seq
	a.History = append(a.History, e)
	if len(a.History) > maxHistory {
		a.History = slices.Delete(a.History, 0, len(a.History)-maxHistory)
	}
}

// canPay reports whether u can pay amount without passing its limit.
func (s *state) canPay(u peer.ID, amount int64) error {
	a := s.Accounts[u]
	var bal int64
	if a != nil {
		bal = a.Balance
	}
	if bal-amount < -s.limit() {
		return fmt.Errorf("%w: %s has %s available (balance %s, limit %s), needs %s", ErrInsufficient,
			u, Credits(bal+s.limit()), Credits(bal), Credits(s.limit()), Credits(amount))
	}
	return nil
}

func fail(err error) outcome { return outcome{Code: codeOf(err), Msg: err.Error()} }

// apply applies c; checked says its transaction's signatures verified on
// this node already.
func (s *state) apply(c *command, checked bool) outcome {
	switch c.Op {
	case opGenesis:
		if s.Genesis != nil {
			return fail(fmt.Errorf("%w: the ledger was created already", ErrReplay))
		}
		if c.Genesis == nil || c.Genesis.ID == "" || c.Genesis.Limit < 0 {
			return fail(fmt.Errorf("%w: genesis without an ID or with a negative limit", ErrMalformed))
		}
		g := *c.Genesis
		s.Genesis = &g
		return outcome{}
	case opTick:
		s.tick(c.Time)
		return outcome{}
	case opTx:
		if s.Genesis == nil {
			return fail(fmt.Errorf("%w: the ledger has no genesis yet", ErrNoLedger))
		}
		st, err := decodeTx(c.Tx, !checked)
		if err != nil {
			return fail(err)
		}
		return s.applyTx(st.tx, c.Time)
	}
	return fail(fmt.Errorf("%w: unknown ledger operation %d", ErrMalformed, c.Op))
}

func inWindow(t, now int64) bool {
	d := time.Duration(t - now)
	return d <= Window && d >= -Window
}

func (s *state) applyTx(t *Tx, now int64) outcome {
	if !inWindow(t.Time, now) {
		return fail(fmt.Errorf("%w: %s signed at %s, the ledger's clock says %s", ErrStale, t.Kind,
			time.Unix(0, t.Time).UTC().Format(time.RFC3339), time.Unix(0, now).UTC().Format(time.RFC3339)))
	}
	id := t.ID()
	if _, seen := s.Nonces[id]; seen {
		return fail(fmt.Errorf("%w: %s %s", ErrReplay, t.Kind, id))
	}
	var o outcome
	var err error
	s.Seq++ // the entries this makes carry the new number
	switch t.Kind {
	case Transfer:
		o, err = s.transfer(t, now)
	case Reserve:
		o, err = s.reserve(t, now)
	case Release:
		o, err = s.release(t, now)
	case Settle:
		o, err = s.settle(t.Receipt.receipt, now)
	default:
		err = fmt.Errorf("%w: unknown kind %d", ErrMalformed, t.Kind)
	}
	if err != nil {
		s.Seq--
		return fail(err)
	}
	s.Nonces[id] = now
	o.Seq = s.Seq
	return o
}

func (s *state) transfer(t *Tx, now int64) (outcome, error) {
	if err := s.canPay(t.From, t.Amount); err != nil {
		return outcome{}, err
	}
	at := time.Unix(0, now).UTC()
	s.acct(t.From).Balance -= t.Amount
	s.acct(t.To).Balance += t.Amount
	s.note(t.From, Entry{Time: at, Kind: "transfer", Peer: t.To, Amount: -t.Amount, Memo: t.Memo, Ref: t.ID()})
	s.note(t.To, Entry{Time: at, Kind: "transfer", Peer: t.From, Amount: t.Amount, Memo: t.Memo, Ref: t.ID()})
	return outcome{Balance: s.Accounts[t.From].Balance}, nil
}

func (s *state) reserve(t *Tx, now int64) (outcome, error) {
	if err := s.canPay(t.From, t.Amount); err != nil {
		return outcome{}, err
	}
	if _, ok := s.Closed[t.ID()]; ok {
		return outcome{}, fmt.Errorf("%w: reserve %s", ErrSettled, t.ID())
	}
	a := s.acct(t.From)
	a.Balance -= t.Amount
	a.Reserved += t.Amount
	s.Escrow += t.Amount
	s.Reserves[t.ID()] = reserve{Payer: t.From, Provider: t.Provider, Max: t.Amount, Price: t.Price, Expires: t.Expires}
	s.note(t.From, Entry{Time: time.Unix(0, now).UTC(), Kind: "reserve", Amount: -t.Amount, Ref: t.ID(), Memo: "for a run on " + t.Provider.String()})
	return outcome{Balance: a.Balance}, nil
}

// open finds the open reserve id, or says why there is none.
func (s *state) open(id string) (reserve, error) {
	r, ok := s.Reserves[id]
	if ok {
		return r, nil
	}
	if _, closed := s.Closed[id]; closed {
		return r, fmt.Errorf("%w: reserve %s was settled or released", ErrSettled, id)
	}
	return r, fmt.Errorf("%w: %s (never reserved, or expired and returned to its payer)", ErrNoReserve, id)
}

// unreserve closes reserve id, paying paid of it to the payee and the rest
// back to the payer.
func (s *state) unreserve(id string, r reserve, payee peer.ID, paid int64, kind string, now int64) {
	at := time.Unix(0, now).UTC()
	s.Escrow -= r.Max
	a := s.acct(r.Payer)
	a.Reserved -= r.Max
	a.Balance += r.Max - paid
	if paid > 0 {
		s.acct(payee).Balance += paid
		s.note(payee, Entry{Time: at, Kind: kind, Peer: r.Payer, Amount: paid, Ref: id})
	}
	s.note(r.Payer, Entry{Time: at, Kind: kind, Peer: payee, Amount: r.Max - paid, Ref: id, Memo: "paid " + Credits(paid) + " of " + Credits(r.Max) + " reserved"})
	delete(s.Reserves, id)
	s.Closed[id] = now
}

func (s *state) release(t *Tx, now int64) (outcome, error) {
	id := hex.EncodeToString(t.Ref)
	r, err := s.open(id)
	if err != nil {
		return outcome{}, err
	}
	if r.Provider != t.Provider {
		return outcome{}, fmt.Errorf("%w: reserve %s is for a run on %s, not on %s", ErrBadReceipt, id, r.Provider, t.Provider)
	}
	s.unreserve(id, r, t.From, 0, "release", now)
	return outcome{}, nil
}

// settle pays a receipt. A compute receipt is paid from its open
// reserve, once: what its CPU costs at the reserve's price, capped at
// the reserve's most; the rest goes back to the payer. Who may settle it
// (the payee, through the node the reserve names) is the transaction's
// check. A storage receipt is paid from the payer's balance.
func (s *state) settle(r *Receipt, now int64) (outcome, error) {
	if !inWindow(r.Time, now) {
		return outcome{}, fmt.Errorf("%w: receipt made at %s", ErrStale, time.Unix(0, r.Time).UTC().Format(time.RFC3339))
	}
	if r.Payer == r.Payee {
		return outcome{}, fmt.Errorf("%w: %s cannot pay itself", ErrBadReceipt, r.Payer)
	}
	id := hex.EncodeToString(r.ID)
	if r.Kind == Storage {
		if _, closed := s.Closed[id]; closed {
			return outcome{}, fmt.Errorf("%w: storage receipt %s", ErrSettled, id)
		}
		want := StorageCost(r.Bytes, time.Duration(r.Until-r.From), r.PerGiBDay)
		if r.Amount != want {
			return outcome{}, fmt.Errorf("%w: %d bytes for %v at %d per GiB-day cost %s, not %s", ErrBadReceipt,
				r.Bytes, time.Duration(r.Until-r.From), r.PerGiBDay, Credits(want), Credits(r.Amount))
		}
		if err := s.canPay(r.Payer, r.Amount); err != nil {
			return outcome{}, err
		}
		if err := s.canReceive(r.Payee, r.Amount); err != nil {
			return outcome{}, err
		}
		at := time.Unix(0, now).UTC()
		s.acct(r.Payer).Balance -= r.Amount
		s.acct(r.Payee).Balance += r.Amount
		memo := "storage of " + r.Space
		s.note(r.Payer, Entry{Time: at, Kind: "storage", Peer: r.Payee, Amount: -r.Amount, Ref: id, Memo: memo})
		s.note(r.Payee, Entry{Time: at, Kind: "storage", Peer: r.Payer, Amount: r.Amount, Ref: id, Memo: memo})
		s.Closed[id] = now
		return outcome{Amount: r.Amount, Balance: s.Accounts[r.Payer].Balance}, nil
	}
	res, err := s.open(id)
	if err != nil {
		return outcome{}, err
	}
	// Cost saturates at math.MaxInt64; the reserve's most caps it.
	want := min(res.Price.Cost(time.Duration(r.CPU)), res.Max)
	switch {
	case res.Payer != r.Payer:
		return outcome{}, fmt.Errorf("%w: reserve %s is %s's, the receipt's payer is %s", ErrBadReceipt, id, res.Payer, r.Payer)
	case res.Provider != r.Node:
		return outcome{}, fmt.Errorf("%w: reserve %s is for a run on %s, the receipt is from %s", ErrBadReceipt, id, res.Provider, r.Node)
	case r.Amount < 0 || r.Amount > res.Max:
		return outcome{}, fmt.Errorf("%w: the receipt asks %s, reserve %s holds %s", ErrBadReceipt, Credits(r.Amount), id, Credits(res.Max))
	case r.Amount != want:
		return outcome{}, fmt.Errorf("%w: %v of CPU costs %s at the reserve's price (at most %s), the receipt says %s",
			ErrBadReceipt, time.Duration(r.CPU), Credits(want), Credits(res.Max), Credits(r.Amount))
	}
	if err := s.canReceive(r.Payee, r.Amount); err != nil {
		return outcome{}, err
	}
	s.unreserve(id, res, r.Payee, r.Amount, "settle", now)
	return outcome{Amount: r.Amount, Balance: s.Accounts[r.Payer].Balance}, nil
}

// canReceive reports whether u's balance can take amount (not negative)
// more without passing what an int64 holds. (The ledger's checked
// arithmetic may take its place.)
func (s *state) canReceive(u peer.ID, amount int64) error {
	var bal int64
	if a := s.Accounts[u]; a != nil {
		bal = a.Balance
	}
	if amount < 0 || bal > math.MaxInt64-amount {
		return fmt.Errorf("%w: %s's balance of %s cannot take %s more", ErrBadReceipt, u, Credits(bal), Credits(amount))
	}
	return nil
}

// tick returns expired reserves to their payers and forgets nonces and
// settled IDs older than any transaction the window still admits.
func (s *state) tick(now int64) {
	for _, id := range slices.Sorted(maps.Keys(s.Reserves)) {
		r := s.Reserves[id]
		if r.Expires <= now {
			s.Seq++
			s.unreserve(id, r, r.Provider, 0, "expire", now)
		}
	}
	old := now - int64(2*Window)
	for id, t := range s.Nonces {
		if t < old {
			delete(s.Nonces, id)
		}
	}
	for id, t := range s.Closed {
		if t < old {
			delete(s.Closed, id)
		}
	}
}
