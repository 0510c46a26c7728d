package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/internal/wire"
)

// codes name the sentinels on the wire, tried in this order: an error of
// two kinds always gets the first.
var codes = errcode.Table[string]{
	{Key: "malformed", Err: ErrMalformed}, {Key: "too_large", Err: ErrTooLarge}, {Key: "forged", Err: ErrForged},
	{Key: "replay", Err: ErrReplay}, {Key: "stale", Err: ErrStale}, {Key: "insufficient", Err: ErrInsufficient},
	{Key: "no_reserve", Err: ErrNoReserve}, {Key: "no_line", Err: ErrNoLine}, {Key: "settled", Err: ErrSettled},
	{Key: "bad_receipt", Err: ErrBadReceipt}, {Key: "invariant", Err: ErrInvariant}, {Key: "refused", Err: ErrRefused},
	{Key: "no_ledger", Err: ErrNoLedger}, {Key: "impostor", Err: ErrImpostor}, {Key: "unknown_payee", Err: ErrUnknownPayee},
}

func codeOf(err error) string {
	if c, ok := codes.KeyOf(err); ok {
		return c
	}
	return "internal"
}

// errorOf rebuilds an error from its code and message.
func errorOf(code, msg string) error {
	if code == "" {
		return nil
	}
	if e := codes.ErrOf(code); e != nil {
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
// member that proposed it; the ledger's own clock takes it only as far as
// the rules of clockFor allow, so that every member judges windows and
// expiries alike and no member's clock can move the ledger's far. Stamps
// are the members' signed clocks (clock.go): a tick needs a majority's,
// and moves the ledger's clock to the time they give; a transaction may
// carry them, when its proposer found the ledger's quorum time late.
type command struct {
	Op      uint8       `cbor:"1,keyasint"`
	Time    int64       `cbor:"2,keyasint"`
	Tx      []byte      `cbor:"3,keyasint,omitempty"`
	Genesis *Genesis    `cbor:"4,keyasint,omitempty"`
	Stamps  []timeStamp `cbor:"5,keyasint,omitempty"`
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

// Genesis is the ledger's first entry: its ID, and the credit limit it
// grants each of its founding users (the users of the nodes that formed
// it). Every other account starts with no limit: it earns a balance by
// serving, or is vouched for (a trust line, Vouch).
//
// A genesis with no founders is a ledger made before trust lines: there
// every account keeps Limit, as it always had, since changing the rule
// under a log already applied would make members that replay it from
// different snapshots disagree. Such a ledger is made anew to close it.
type Genesis struct {
	ID      string `cbor:"1,keyasint" json:"id"`
	Created int64  `cbor:"2,keyasint" json:"created"`
	Limit   int64  `cbor:"3,keyasint" json:"limit"` // millicredits
	// Founders are the users granted Limit, sorted, at most maxFounders.
	Founders []peer.ID `cbor:"4,keyasint,omitempty" json:"founders,omitempty"`
}

// legacy reports whether g predates founders: every account has g.Limit.
func (g *Genesis) legacy() bool { return len(g.Founders) == 0 }

// maxFounders bounds the founding users: a ledger is formed by at most
// as many nodes (serveForm's cap).
const maxFounders = 16

// Entry is one line of an account's history.
type Entry struct {
	Seq  uint64    `cbor:"1,keyasint" json:"seq"`
	Time time.Time `cbor:"2,keyasint" json:"time"`
	Kind string    `cbor:"3,keyasint" json:"kind"` // transfer, reserve, settle, release, expire, storage, vouch
	// Peer is the other account: the payee of a payment, the payer of
	// an income, the other end of a trust line.
	Peer peer.ID `cbor:"4,keyasint,omitempty" json:"peer,omitempty"`
	// Amount is what the entry did to the balance: negative for a debit
	// (zero for a trust line, which moves the limit, not the balance).
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
	// Lines are the trust lines this account extends, by the user each
	// vouches for; Out is their sum, which its own credit answers for.
	Lines map[peer.ID]int64 `cbor:"4,keyasint,omitempty"`
	Out   int64             `cbor:"5,keyasint,omitempty"`
	// Backers are the trust lines extended to this account, by voucher;
	// In is their sum, which its limit gains.
	Backers map[peer.ID]int64 `cbor:"6,keyasint,omitempty"`
	In      int64             `cbor:"7,keyasint,omitempty"`
	// Signed is when the account last signed a transaction the ledger
	// applied (zero: never): proof that somebody holds its key, which a
	// payment to it does not give (anyone may pay any ID).
	Signed int64 `cbor:"8,keyasint,omitempty"`
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
	Closed   map[string]int64     `cbor:"5,keyasint"` // settled receipt IDs, by the ledger's time
	Nonces   map[string]int64     `cbor:"6,keyasint"` // applied nonces, by their transaction's own time
	Seq      uint64               `cbor:"7,keyasint"`
	// Clock is the time of the latest entry applied: the ledger's clock,
	// which never goes back.
	Clock int64 `cbor:"8,keyasint,omitempty"`
	// Seen was the latest time a user signed on a transaction applied,
	// which the clock once followed; a user chooses it, so it is only read
	// from old snapshots now.
	Seen int64 `cbor:"9,keyasint,omitempty"`
	// Quorum is the latest time a majority of the members stamped on an
	// entry (quorumTime), never going back: the clock runs at most
	// MaxSkew past it. The genesis starts it.
	Quorum int64 `cbor:"10,keyasint,omitempty"`

	j journal // what the entry under way changed, to undo it
}

func newState() *state {
	return &state{Accounts: map[peer.ID]*account{}, Reserves: map[string]reserve{}, Closed: map[string]int64{}, Nonces: map[string]int64{}}
}

// machine is the ledger's group.StateMachine.
type machine struct {
	mu  sync.Mutex
	s   *state
	log *slog.Logger
	// changed is closed and replaced after each apply.
	changed chan struct{}
	// checked holds the hashes of transactions whose signatures this
	// node checked at its door, so that it does not check them again as
	// it applies them; the outcome is the same either way.
	checked map[[32]byte]struct{}
	order   [][32]byte
	// members are the roster's members (sorted), whose stamps give the
	// ledger's time; fsm keeps them the roster's.
	members []peer.ID
}

// maxChecked bounds the transactions remembered as checked.
const maxChecked = 1 << 14

// newMachine returns an empty ledger that logs a broken invariant to log
// (nil: nowhere).
func newMachine(log *slog.Logger) *machine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &machine{s: newState(), log: log, changed: make(chan struct{}), checked: map[[32]byte]struct{}{}}
}

// setMembers sets the members whose time stamps count.
func (m *machine) setMembers(members []peer.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.members = slices.Sorted(slices.Values(members))
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
		o = m.s.apply(&c, m.takeChecked(c.Tx), m.members)
		close(m.changed)
		m.changed = make(chan struct{})
		m.mu.Unlock()
	}
	if o.Code == "invariant" {
		m.log.Error("the ledger refused an entry that would have broken it", "err", o.Msg)
	}
	return wire.Marshal(&o)
}

// precheck checks st against this node's state as the ledger would apply
// it at local (this node's clock): its shape, window, nonce, the payer's
// credit, the reserve or line it names. It changes nothing. The node
// that receives a transaction calls it before it proposes one, so that a
// transaction the ledger would refuse never becomes an entry. st's
// signatures are not checked again: st comes from DecodeTx.
func (m *machine) precheck(st *SignedTx, local int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.s.precheck(st, local)
}

// Snapshot returns the state's encoding, after checking it whole (a
// broken state is logged at error, and still saved: it is the log's).
func (m *machine) Snapshot() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.s.audit(); err != nil {
		m.log.Error("the ledger's state is unsound", "err", err)
	}
	return wire.Marshal(m.s)
}

// Restore replaces the state with a snapshot's. A snapshot from before
// trust lines and the monotonic clock restores: its accounts have no
// lines, and its clock starts from the latest time it remembers. A state
// found unsound is logged at error and restored all the same (the log is
// what it is): from then on no entry may make it worse.
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
	for u, a := range s.Accounts {
		if a == nil {
			delete(s.Accounts, u)
		}
	}
	if s.Genesis != nil && s.Clock == 0 {
		s.upgradeClock()
	}
	if s.Genesis != nil && s.Quorum == 0 {
		// A snapshot from before the members stamped the time: its clock
		// is the latest time it has.
		s.Quorum = s.Clock
	}
	if err := s.audit(); err != nil {
		if s.Genesis != nil && len(s.Genesis.Founders) > 0 {
			// A ledger under today's rules is never unsound unless
			// someone made it so: a leader's snapshot that mints credit
			// is refused, and this member keeps its own state.
			m.log.Error("refused an unsound ledger snapshot", "err", err)
			return fmt.Errorf("ledger snapshot: %w", err)
		}
		// A ledger from before trust lines may have been broken by the
		// old overflow: it restores, and entries may mend it.
		m.log.Error("the ledger's snapshot is unsound", "err", err)
	}
	m.mu.Lock()
	m.s = s
	m.mu.Unlock()
	return nil
}

// upgradeClock starts the clock of a snapshot made before it: at the
// latest time the snapshot remembers. Such a snapshot kept nonces by the
// time they were applied, which is at most Window before their own;
// they are kept as if they were that late, so none is forgotten early.
func (s *state) upgradeClock() {
	s.Clock = s.Genesis.Created
	for id, t := range s.Nonces {
		s.Clock = max(s.Clock, t)
		s.Nonces[id] = sat(t, int64(Window))
	}
	for _, t := range s.Closed {
		s.Clock = max(s.Clock, t)
	}
	s.Seen = s.Clock
}

// view runs f on the state under the lock.
func (m *machine) view(f func(*state)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m.s)
}

// canPay reports whether u can pay amount without passing its limit.
func (s *state) canPay(u peer.ID, amount int64) error {
	avail := s.available(u)
	if avail.less(amount) {
		var bal int64
		if a := s.Accounts[u]; a != nil {
			bal = a.Balance
		}
		limit := s.limitOf(u)
		return fmt.Errorf("%w: %s has %s available (balance %s, limit %s), needs %s", ErrInsufficient,
			u, Credits(avail.int64()), Credits(bal), Credits(limit.int64()), Credits(amount))
	}
	return nil
}

func fail(err error) outcome { return outcome{Code: codeOf(err), Msg: err.Error()} }

// apply applies c; checked says its transaction's signatures verified on
// this node already; members are those whose time stamps count. A command
// refused by a rule, or one that would break the ledger's invariants,
// changes nothing: what it wrote is undone.
func (s *state) apply(c *command, checked bool, members []peer.ID) outcome {
	s.j.begin(s)
	o := s.step(c, checked, members)
	if o.Code == "" {
		if err := s.j.check(s); err != nil {
			o = fail(err)
		}
	}
	if o.Code != "" {
		s.j.rollback(s)
	}
	s.j.end()
	return o
}

// precheck is machine.precheck on the state: it applies st at local as
// apply would, and undoes it. It judges st's window on local itself, not
// clamped to the quorum time: a proposer whose quorum time is late brings
// fresh stamps with the entry (stampsIfLate). A transaction signed more
// than MaxSkew ahead of local is refused: it could only be stale by the
// ledger's clock, or a clock to age the ledger with.
func (s *state) precheck(st *SignedTx, local int64) error {
	if s.Genesis == nil {
		return fmt.Errorf("%w: the ledger has no genesis yet", ErrNoLedger)
	}
	if st == nil || st.tx == nil {
		return fmt.Errorf("%w: no transaction", ErrMalformed)
	}
	if err := st.checkWith(false); err != nil {
		return err
	}
	if st.tx.Time > local {
		if err := checkClock(st.tx.Time, local); err != nil {
			return fmt.Errorf("the %s: %w", st.tx.Kind, err)
		}
	}
	s.j.begin(s)
	now := max(s.Clock, local)
	s.j.set(&s.Clock, now)
	o := s.applyTx(st.tx, now)
	if o.Code == "" {
		if err := s.j.check(s); err != nil {
			o = fail(err)
		}
	}
	s.j.rollback(s)
	s.j.end()
	return errorOf(o.Code, o.Msg)
}

func (s *state) step(c *command, checked bool, members []peer.ID) outcome {
	switch c.Op {
	case opGenesis:
		if s.Genesis != nil {
			return fail(fmt.Errorf("%w: the ledger was created already", ErrReplay))
		}
		g, err := checkGenesis(c.Genesis)
		if err != nil {
			return fail(err)
		}
		s.Genesis = g
		s.j.push(func() { s.Genesis = nil })
		s.j.set(&s.Clock, g.Created)
		s.j.set(&s.Seen, g.Created)
		s.j.set(&s.Quorum, g.Created) // every member signed the founding
		return outcome{}
	case opTick:
		if s.Genesis == nil {
			return fail(fmt.Errorf("%w: the ledger has no genesis yet", ErrNoLedger))
		}
		if len(c.Stamps) == 0 {
			return fail(fmt.Errorf("%w: a tick without the members' time stamps", ErrForged))
		}
		if err := s.advance(c, members); err != nil {
			return fail(fmt.Errorf("tick: %w", err))
		}
		now := max(s.Clock, s.Quorum)
		s.j.set(&s.Clock, now)
		return s.tick(now)
	case opTx:
		if s.Genesis == nil {
			return fail(fmt.Errorf("%w: the ledger has no genesis yet", ErrNoLedger))
		}
		st, err := decodeTx(c.Tx, !checked)
		if err != nil {
			return fail(err)
		}
		if err := s.advance(c, members); err != nil {
			return fail(fmt.Errorf("%s: %w", st.tx.Kind, err))
		}
		now := s.clockFor(c.Time)
		s.j.set(&s.Clock, now)
		return s.applyTx(st.tx, now)
	}
	return fail(fmt.Errorf("%w: unknown ledger operation %d", ErrMalformed, c.Op))
}

// checkGenesis checks a genesis's shape and returns it with its founders
// sorted.
func checkGenesis(g *Genesis) (*Genesis, error) {
	switch {
	case g == nil || g.ID == "" || len(g.ID) > 64:
		return nil, fmt.Errorf("%w: genesis without an ID, or with one over 64 bytes", ErrMalformed)
	case g.Limit < 0 || g.Limit > MaxAmount:
		return nil, fmt.Errorf("%w: genesis limit %d (want 0 to %d)", ErrMalformed, g.Limit, MaxAmount)
	case g.Created <= 0 || g.Created > maxTime:
		return nil, fmt.Errorf("%w: genesis time %d", ErrMalformed, g.Created)
	case len(g.Founders) > maxFounders:
		return nil, fmt.Errorf("%w: genesis of %d founders (at most %d)", ErrMalformed, len(g.Founders), maxFounders)
	}
	out := *g
	out.Founders = slices.Clone(g.Founders)
	slices.Sort(out.Founders)
	out.Founders = slices.Compact(out.Founders)
	for _, u := range out.Founders {
		if err := validID(u); err != nil {
			return nil, fmt.Errorf("%w: founder: %v", ErrMalformed, err)
		}
	}
	return &out, nil
}

func stamp(t int64) string { return time.Unix(0, t).UTC().Format(time.RFC3339) }

func inWindow(t, now int64) bool {
	d, ok := sub64(t, now)
	return ok && d <= int64(Window) && d >= -int64(Window)
}

func (s *state) applyTx(t *Tx, now int64) outcome {
	if !inWindow(t.Time, now) {
		return fail(fmt.Errorf("%w: %s signed at %s, the ledger's clock says %s", ErrStale, t.Kind, stamp(t.Time), stamp(now)))
	}
	id := t.ID()
	if _, seen := s.Nonces[id]; seen {
		return fail(fmt.Errorf("%w: %s %s", ErrReplay, t.Kind, id))
	}
	var o outcome
	var err error
	s.Seq++ // the entries this makes carry the new number; undone with the rest
	switch t.Kind {
	case Transfer:
		o, err = s.transfer(t, now)
	case Reserve:
		o, err = s.reserve(t, now)
	case Release:
		o, err = s.release(t, now)
	case Settle:
		o, err = s.settle(t.Receipt.receipt, now)
	case Vouch:
		o, err = s.vouch(t, now)
	default:
		err = fmt.Errorf("%w: unknown kind %d", ErrMalformed, t.Kind)
	}
	if err != nil {
		return fail(err)
	}
	s.setNonce(id, t.Time)
	s.j.set(&s.acct(t.From).Signed, now)
	o.Seq = s.Seq
	return o
}

func (s *state) transfer(t *Tx, now int64) (outcome, error) {
	if err := s.canPay(t.From, t.Amount); err != nil {
		return outcome{}, err
	}
	if err := s.move(t.From, t.To, t.Amount); err != nil {
		return outcome{}, err
	}
	at := time.Unix(0, now).UTC()
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
	if err := s.addBalance(t.From, -t.Amount); err != nil {
		return outcome{}, err
	}
	a := s.acct(t.From)
	if err := s.addTo(&a.Reserved, t.Amount, "the reserved sum of "+t.From.String()); err != nil {
		return outcome{}, err
	}
	if err := s.addTo(&s.Escrow, t.Amount, "the escrow"); err != nil {
		return outcome{}, err
	}
	s.setReserve(t.ID(), reserve{Payer: t.From, Provider: t.Provider, Max: t.Amount, Price: t.Price, Expires: t.Expires})
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
func (s *state) unreserve(id string, r reserve, payee peer.ID, paid int64, kind string, now int64) error {
	if paid < 0 || paid > r.Max {
		return fmt.Errorf("%w: %d paid of a reserve of %d", ErrInvariant, paid, r.Max)
	}
	at := time.Unix(0, now).UTC()
	if err := s.addTo(&s.Escrow, -r.Max, "the escrow"); err != nil {
		return err
	}
	a := s.acct(r.Payer)
	if err := s.addTo(&a.Reserved, -r.Max, "the reserved sum of "+r.Payer.String()); err != nil {
		return err
	}
	if err := s.addBalance(r.Payer, r.Max-paid); err != nil {
		return err
	}
	if paid > 0 {
		if err := s.addBalance(payee, paid); err != nil {
			return err
		}
		s.note(payee, Entry{Time: at, Kind: kind, Peer: r.Payer, Amount: paid, Ref: id})
	}
	s.note(r.Payer, Entry{Time: at, Kind: kind, Peer: payee, Amount: r.Max - paid, Ref: id, Memo: "paid " + Credits(paid) + " of " + Credits(r.Max) + " reserved"})
	s.dropReserve(id)
	s.setClosed(id, now)
	return nil
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
	if err := s.unreserve(id, r, t.From, 0, "release", now); err != nil {
		return outcome{}, err
	}
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
		if err := s.move(r.Payer, r.Payee, r.Amount); err != nil {
			return outcome{}, err
		}
		memo := "storage of " + r.Space
		s.note(r.Payer, Entry{Time: at, Kind: "storage", Peer: r.Payee, Amount: -r.Amount, Ref: id, Memo: memo})
		s.note(r.Payee, Entry{Time: at, Kind: "storage", Peer: r.Payer, Amount: r.Amount, Ref: id, Memo: memo})
		s.setClosed(id, now)
		return outcome{Amount: r.Amount, Balance: s.Accounts[r.Payer].Balance}, nil
	}
	res, err := s.open(id)
	if err != nil {
		return outcome{}, err
	}
	if res.Expires <= now {
		// Expired, though no tick has returned it yet.
		return outcome{}, fmt.Errorf("%w: reserve %s expired at %s, the ledger's clock says %s", ErrNoReserve, id, stamp(res.Expires), stamp(now))
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
	if err := s.unreserve(id, res, r.Payee, r.Amount, "settle", now); err != nil {
		return outcome{}, err
	}
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
// settled IDs older than any transaction the window still admits. A
// reserve that cannot be returned (a payer's balance at the end of
// int64) stays open, and the outcome names it.
func (s *state) tick(now int64) outcome {
	var stuck []string
	for _, id := range slices.Sorted(maps.Keys(s.Reserves)) {
		r := s.Reserves[id]
		if r.Expires > now {
			continue
		}
		mark, seq := s.j.mark(), s.Seq
		s.Seq++
		if err := s.unreserve(id, r, r.Provider, 0, "expire", now); err != nil {
			s.j.undo(s, mark)
			s.Seq = seq
			stuck = append(stuck, id)
		}
	}
	for id, t := range s.Nonces {
		if forgettable(t, now) {
			forget(s, s.Nonces, id)
		}
	}
	old := now - int64(2*Window)
	for id, t := range s.Closed {
		if t < old {
			forget(s, s.Closed, id)
		}
	}
	if len(stuck) > 0 {
		return outcome{Msg: fmt.Sprintf("reserves %v could not be returned", stuck)}
	}
	return outcome{}
}

// forgettable reports whether a nonce of a transaction signed at t may be
// forgotten at now: the transaction is stale by then, with MaxSkew to
// spare.
func forgettable(t, now int64) bool {
	return t < now-int64(Window+MaxSkew)
}

// due reports whether a tick at local (the quorum's time, as the leader's
// clock guesses it) would do anything: return a reserve or forget a nonce
// or a settled ID. The leader asks before it asks the members for their
// stamps and writes one, so that an idle ledger writes nothing.
func (s *state) due(local int64) bool {
	if s.Genesis == nil {
		return false
	}
	now := max(s.Clock, local)
	for _, r := range s.Reserves {
		if r.Expires <= now {
			return true
		}
	}
	for _, t := range s.Nonces {
		if forgettable(t, now) {
			return true
		}
	}
	old := now - int64(2*Window)
	for _, t := range s.Closed {
		if t < old {
			return true
		}
	}
	return false
}
