package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
)

// The ledger's identity is its roster: the genesis with its first members,
// signed by every one of them (epoch 0), and each later change of members,
// signed by a majority of the members before it. A node learns the roster
// from a source it trusts (its own ledger, the join it made, a node of its
// own user or one it trusts) and from then on only extends it, with changes
// it checks itself; it never takes another ledger's roster in its place.
// Every answer of the ledger that a node believes is signed by a member of
// the roster it knows.

// MaxMembers bounds a ledger's members.
const MaxMembers = 16

// Domain separation for what a ledger node's key signs.
const (
	rosterDomain = "nube ledger roster v1\n"
	answerDomain = "nube ledger answer v1\n"
)

// opMembers is the log entry that changes the ledger's members. Its number
// stands apart from the rules' operations (state.go), which may grow.
const opMembers = 64

// maxRosterEntry caps an encoded roster entry: a body naming MaxMembers
// members and as many signatures, with room to spare.
const maxRosterEntry = 16 << 10

// rosterBody is one step of the ledger's membership, the bytes its members
// sign.
type rosterBody struct {
	Ledger  string    `cbor:"1,keyasint"`
	Epoch   uint64    `cbor:"2,keyasint"`
	Members []peer.ID `cbor:"3,keyasint"` // sorted, the whole set
	// Genesis is, at epoch 0, the genesis entry's Genesis, encoded.
	Genesis []byte `cbor:"4,keyasint,omitempty"`
}

// memberSig is a member node's signature of a roster body or an answer.
type memberSig struct {
	By  peer.ID `cbor:"1,keyasint" json:"by"`
	Sig []byte  `cbor:"2,keyasint" json:"sig"`
}

// rosterEntry is a signed roster body.
type rosterEntry struct {
	Body []byte      `cbor:"1,keyasint" json:"body"`
	Sigs []memberSig `cbor:"2,keyasint" json:"sigs"`

	b rosterBody
}

// chain is the ledger's roster, epoch 0 first. It is never changed in
// place: extending it makes a new one.
type chain []rosterEntry

func (c chain) id() string {
	if len(c) == 0 {
		return ""
	}
	return c[0].b.Ledger
}

func (c chain) epoch() uint64 {
	if len(c) == 0 {
		return 0
	}
	return c[len(c)-1].b.Epoch
}

// members are the ledger's members now.
func (c chain) members() []peer.ID {
	if len(c) == 0 {
		return nil
	}
	return c[len(c)-1].b.Members
}

func (c chain) has(p peer.ID) bool {
	_, ok := slices.BinarySearch(c.members(), p)
	return ok
}

// decode decodes e's body.
func (e *rosterEntry) decode() error {
	if len(e.Body) > maxRosterEntry || len(e.Sigs) > MaxMembers {
		return fmt.Errorf("%w: roster entry of %d bytes and %d signatures", ErrMalformed, len(e.Body), len(e.Sigs))
	}
	if err := wire.Unmarshal(e.Body, &e.b); err != nil {
		return fmt.Errorf("%w: roster entry: %v", ErrMalformed, err)
	}
	m := e.b.Members
	if e.b.Ledger == "" || len(m) == 0 || len(m) > MaxMembers {
		return fmt.Errorf("%w: roster of %d members, ledger %q", ErrMalformed, len(m), e.b.Ledger)
	}
	for i := range m {
		if m[i] == "" || i > 0 && m[i-1] >= m[i] {
			return fmt.Errorf("%w: roster members not sorted and distinct", ErrMalformed)
		}
	}
	return nil
}

// signedBy checks that e carries sound signatures of at least need distinct
// peers of set.
func (e *rosterEntry) signedBy(set []peer.ID, need int) error {
	var got []peer.ID
	for _, s := range e.Sigs {
		if _, ok := slices.BinarySearch(set, s.By); !ok || slices.Contains(got, s.By) {
			continue
		}
		if identity.Verify(s.By, rosterDomain, e.Body, s.Sig) == nil {
			got = append(got, s.By)
		}
	}
	if len(got) < need {
		return fmt.Errorf("%w: roster epoch %d of ledger %s is signed by %d of the %d members it needs", ErrForged,
			e.b.Epoch, e.b.Ledger, len(got), need)
	}
	return nil
}

// founding checks e as a ledger's epoch 0: every member signed it, and it
// names gen (the genesis entry's, if gen is not nil).
func founding(e *rosterEntry, gen *Genesis) error {
	if e == nil {
		return fmt.Errorf("%w: a genesis without its members", ErrMalformed)
	}
	if err := e.decode(); err != nil {
		return err
	}
	var g Genesis
	if e.b.Epoch != 0 || wire.Unmarshal(e.b.Genesis, &g) != nil || g.ID != e.b.Ledger {
		return fmt.Errorf("%w: the founding of ledger %s does not hold its genesis", ErrMalformed, e.b.Ledger)
	}
	if gen != nil {
		b, err := wire.Marshal(gen)
		if err != nil || !bytes.Equal(b, e.b.Genesis) {
			return fmt.Errorf("%w: the genesis is not the one its members signed", ErrForged)
		}
	}
	return e.signedBy(e.b.Members, len(e.b.Members))
}

// majority of n members.
func majority(n int) int { return n/2 + 1 }

// adds checks the body of e (decoded) as the change that follows c: the
// same ledger, the next epoch, the members of c and one more, whom it
// returns.
func (c chain) adds(e *rosterEntry) (peer.ID, error) {
	cur := c.members()
	if e.b.Ledger != c.id() {
		return "", fmt.Errorf("%w: a change of members of ledger %s, not of %s", ErrImpostor, e.b.Ledger, c.id())
	}
	if e.b.Epoch != c.epoch()+1 {
		return "", fmt.Errorf("%w: a change of members to epoch %d, the ledger is at %d", ErrReplay, e.b.Epoch, c.epoch())
	}
	added := slices.DeleteFunc(slices.Clone(e.b.Members), c.has)
	if len(e.b.Members) != len(cur)+1 || len(added) != 1 {
		return "", fmt.Errorf("%w: a change of members must add one member to the %d there are", ErrMalformed, len(cur))
	}
	return added[0], nil
}

// next checks e as the change that follows c (see adds), signed by a
// majority of c's members, and returns the roster with it.
func (c chain) next(e *rosterEntry) (chain, error) {
	if err := e.decode(); err != nil {
		return nil, err
	}
	if _, err := c.adds(e); err != nil {
		return nil, err
	}
	if err := e.signedBy(c.members(), majority(len(c.members()))); err != nil {
		return nil, err
	}
	return append(slices.Clip(c), *e), nil
}

// verify checks a whole chain as it came from the wire (or ledger.json).
func verifyChain(c chain) (chain, error) {
	if len(c) == 0 || len(c) > MaxMembers {
		return nil, fmt.Errorf("%w: a roster of %d entries", ErrMalformed, len(c))
	}
	out := chain{c[0]}
	if err := founding(&out[0], nil); err != nil {
		return nil, err
	}
	for i := 1; i < len(c); i++ {
		e := c[i]
		var err error
		if out, err = out.next(&e); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// extends reports whether c is old with entries after it: the same bodies
// as old's, then more.
func (c chain) extends(old chain) bool {
	if len(c) < len(old) {
		return false
	}
	for i := range old {
		if !bytes.Equal(c[i].Body, old[i].Body) {
			return false
		}
	}
	return true
}

// answer is what a member signs when it answers for the ledger: which
// ledger, as of which epoch of its members and which transaction, to which
// question, what.
type answer struct {
	Ledger string `cbor:"1,keyasint"`
	Epoch  uint64 `cbor:"2,keyasint"`
	Seq    uint64 `cbor:"3,keyasint"`
	Kind   string `cbor:"4,keyasint"`
	Req    []byte `cbor:"5,keyasint"` // SHA-256 of the question
	Body   []byte `cbor:"6,keyasint"`
}

// signedAnswer is an answer as it travels, with the hint of who leads.
type signedAnswer struct {
	Answer []byte  `cbor:"1,keyasint"`
	By     peer.ID `cbor:"2,keyasint"`
	Sig    []byte  `cbor:"3,keyasint"`
	// Leader is who leads the ledger as the member knows it: the member
	// to ask first next time. It is a hint, not signed.
	Leader peer.ID `cbor:"4,keyasint,omitempty"`
}

// maxAnswer caps an encoded answer (an account's history is the largest).
const maxAnswer = 256 << 10

// The kinds of answer.
const (
	kindSubmit  = "submit"
	kindAccount = "account"
	kindInfo    = "info"
)

func reqHash(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// check verifies sa against roster c as an answer of kind to the question
// whose hash is req, and decodes its body into out. An answer from a
// later epoch than c's is checked by the caller first (see Manager.ask).
func (c chain) check(sa signedAnswer, kind string, req []byte, out any) (answer, error) {
	var a answer
	if len(sa.Answer) > maxAnswer {
		return a, fmt.Errorf("%w: an answer of %d bytes", ErrTooLarge, len(sa.Answer))
	}
	if err := wire.Unmarshal(sa.Answer, &a); err != nil {
		return a, fmt.Errorf("%w: an answer that does not decode: %v", ErrImpostor, err)
	}
	switch {
	case a.Ledger != c.id():
		return a, fmt.Errorf("%w: %s answers for ledger %q, this node knows ledger %s", ErrImpostor, sa.By, a.Ledger, c.id())
	case !c.has(sa.By):
		return a, fmt.Errorf("%w: %s is not a member of ledger %s (its members: %v)", ErrImpostor, sa.By, c.id(), c.members())
	case a.Kind != kind || !bytes.Equal(a.Req, req):
		return a, fmt.Errorf("%w: %s sent an answer to another question", ErrImpostor, sa.By)
	}
	if err := identity.Verify(sa.By, answerDomain, sa.Answer, sa.Sig); err != nil {
		return a, fmt.Errorf("%w: answer: %v", ErrImpostor, err)
	}
	if err := wire.Unmarshal(a.Body, out); err != nil {
		return a, fmt.Errorf("%w: %s answer: %v", ErrMalformed, kind, err)
	}
	return a, nil
}

// fsm is the ledger's group.StateMachine: the rules' machine (state.go),
// and beside it the roster, which only the genesis and opMembers entries
// change. Every member checks the roster's signatures as it applies them,
// as it checks transactions'.
type fsm struct {
	m *machine

	mu       sync.Mutex
	roster   chain
	rosterCh chan struct{} // closed and replaced when the roster changes

	rec *recorder // the answers this member gives (quorum.go)
}

func newFSM(log *slog.Logger) *fsm {
	return &fsm{m: newMachine(log), rosterCh: make(chan struct{}), rec: newRecorder()}
}

// rosterCmd is the part of a log entry the roster reads: the rules' op and
// genesis (command's keys) and the roster entry beside them.
type rosterCmd struct {
	Op      uint8        `cbor:"1,keyasint"`
	Tx      []byte       `cbor:"3,keyasint,omitempty"`
	Genesis *Genesis     `cbor:"4,keyasint,omitempty"`
	Roster  *rosterEntry `cbor:"64,keyasint,omitempty"`
	Read    *readCmd     `cbor:"65,keyasint,omitempty"`
}

// genesisCmd is the genesis entry: the rules' command and the founding.
type genesisCmd struct {
	command
	Roster *rosterEntry `cbor:"64,keyasint,omitempty"`
}

// Apply applies one entry.
func (b *fsm) Apply(cmd []byte) ([]byte, error) {
	var rc rosterCmd
	decoded := wire.Unmarshal(cmd, &rc) == nil
	b.mu.Lock()
	defer b.mu.Unlock()
	if decoded && rc.Op == opRead {
		return b.read(rc.Read)
	}
	if !decoded || rc.Op != opGenesis && rc.Op != opMembers {
		// The rules' own entry (or one that does not decode: the rules
		// say so).
		out, err := b.m.Apply(cmd)
		if err == nil && decoded && rc.Op == opTx {
			b.record(kindSubmit, rc.Tx, out)
		}
		return out, err
	}
	if rc.Op == opGenesis {
		if err := founding(rc.Roster, rc.Genesis); err != nil {
			return wire.Marshal(ptr(fail(err)))
		}
		out, err := b.m.Apply(cmd)
		var o outcome
		if err == nil && wire.Unmarshal(out, &o) == nil && o.Code == "" {
			b.setRoster(chain{*rc.Roster})
		}
		return out, err
	}
	if b.roster == nil {
		return wire.Marshal(ptr(fail(fmt.Errorf("%w: a change of members before the genesis", ErrNoLedger))))
	}
	next, err := b.roster.next(rc.Roster)
	if err != nil {
		return wire.Marshal(ptr(fail(err)))
	}
	b.setRoster(next)
	return wire.Marshal(&outcome{})
}

func ptr[T any](v T) *T { return &v }

// setRoster changes the roster and wakes those waiting for it; b.mu is
// held.
func (b *fsm) setRoster(c chain) {
	b.roster = c
	b.m.setMembers(c.members())
	close(b.rosterCh)
	b.rosterCh = make(chan struct{})
}

// fsmSnap is a snapshot: the rules' state and the roster. A snapshot
// without key 100 is the rules' state alone, as ledgers kept it before
// they had a roster.
type fsmSnap struct {
	State  []byte `cbor:"100,keyasint"`
	Roster chain  `cbor:"101,keyasint,omitempty"`
}

// Snapshot returns the machine's encoding.
func (b *fsm) Snapshot() ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, err := b.m.Snapshot()
	if err != nil {
		return nil, err
	}
	return wire.Marshal(&fsmSnap{State: st, Roster: b.roster})
}

// Restore replaces the machine's state with a snapshot's.
func (b *fsm) Restore(snap []byte) error {
	var s fsmSnap
	if err := wire.Unmarshal(snap, &s); err != nil {
		return fmt.Errorf("ledger snapshot: %w", err)
	}
	var roster chain
	if s.State == nil {
		s.State = snap
	} else if s.Roster != nil {
		var err error
		if roster, err = verifyChain(s.Roster); err != nil {
			return fmt.Errorf("ledger snapshot: %w", err)
		}
		// The state's genesis must be the one the founders signed: a
		// snapshot cannot swap the ledger's rules (its founders, its
		// limit) for others.
		var st struct {
			Genesis *Genesis `cbor:"1,keyasint,omitempty"`
		}
		if err := wire.Unmarshal(s.State, &st); err != nil {
			return fmt.Errorf("ledger snapshot: %w", err)
		}
		if st.Genesis != nil {
			if err := founding(&roster[0], st.Genesis); err != nil {
				return fmt.Errorf("ledger snapshot: %w", err)
			}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.roster != nil && (roster == nil || roster.id() != b.roster.id() || roster.epoch() < b.roster.epoch()) {
		// A member that knows its roster takes no snapshot of another
		// ledger, of none, or of an older roster.
		return fmt.Errorf("%w: a snapshot of another ledger or an older roster than this member's (ledger %s, epoch %d)", ErrImpostor, b.roster.id(), b.roster.epoch())
	}
	if err := b.m.Restore(s.State); err != nil {
		return err
	}
	b.setRoster(roster)
	return nil
}

// view runs f on the state and the roster, both as of the same entry.
func (b *fsm) view(f func(s *state, r chain)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m.view(func(s *state) { f(s, b.roster) })
}

// next returns the roster, and a channel closed when it changes.
func (b *fsm) next() (chain, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.roster, b.rosterCh
}

// admits says whether p may speak raft to this member for the ledger's
// group: a member of the roster (or anyone, before this member knows the
// roster, as while it joins). A voter that one member added to the raft
// configuration behind the roster's back is refused by the others.
func (b *fsm) admits(p peer.ID) bool {
	r, _ := b.next()
	return r == nil || r.has(p)
}

// waitRoster waits until the roster of b meets cond, and returns it.
func waitRoster(ctx context.Context, b *fsm, cond func(chain) bool) (chain, error) {
	for {
		r, ch := b.next()
		if cond(r) {
			return r, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
