package space

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
)

// LoanOptions say what a loan lends, to whom, for what and how long.
type LoanOptions struct {
	// Runner is the node the run is on; its key must be ed25519.
	Runner peer.ID
	// Rights are Read, Write or both; never Delegate.
	Rights Rights
	// Prefix is what every key the run reads, writes or lists starts
	// with; empty is every key.
	Prefix string
	// Until is when the loan ends: required, at most MaxLoan from now.
	Until time.Time
	// For is the run's purpose, the module it runs (a CID, as text): the
	// runner borrows only for that purpose.
	For string
}

// Lend lends this user's rights on the space to one run: o.Rights on
// keys under o.Prefix, on the node o.Runner, for the purpose o.For, until
// o.Until. It returns the loan, which carries the space's keys wrapped
// to the runner's node key, for the runner's Borrow. The owner lends any
// of Read and Write; a grantee only what its grant gives, for no longer
// than its grant lasts (else ErrNotAuthorised, naming what it lacks).
func (s *Space) Lend(ctx context.Context, o LoanOptions) ([]byte, error) {
	m := s.m
	now := time.Now()
	b := loanBody{Space: s.id, Issuer: m.user, Runner: o.Runner, Rights: o.Rights, Prefix: o.Prefix,
		Until: o.Until.Unix(), For: o.For, Nonce: randomBytes(loanNonce), Keys: []byte{0}, Time: now.Unix()}
	if o.Until.IsZero() {
		return nil, fmt.Errorf("%w: lend on %s: a loan needs an end (Until)", ErrBadGrant, s.id)
	}
	if !o.Until.After(now) {
		return nil, fmt.Errorf("%w: lend on %s: the loan would end before it starts", ErrBadGrant, s.id)
	}
	if err := checkLoanShape(b); err != nil {
		return nil, fmt.Errorf("lend on %s: %w", s.id, err)
	}
	v, err := s.readable(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("lend on %s: %w", s.id, err)
	}
	var g *Grant
	if s.owner != m.user {
		if g, err = s.myGrant(ctx, v, o.Rights); err != nil {
			return nil, fmt.Errorf("lend %s on %s: %w", o.Rights, s.id, err)
		}
		if err := checkLoanChain(b, g); err != nil {
			return nil, fmt.Errorf("lend on %s: %w", s.id, err)
		}
	}
	if b.Keys, err = wrapKeysInfo(loanInfo(s.id), o.Runner, v.keys); err != nil {
		return nil, fmt.Errorf("lend on %s: wrap the keys for %s: %w", s.id, o.Runner, err)
	}
	return signLoan(m.cfg.UserKey, b, g)
}

// Borrowed is a space as a run reaches it under a loan: the loan's
// rights on keys under its prefix, until it ends. Its keys are held in
// this process's memory alone (never in the Manager's cache or on disk)
// until Close, which zeroes them. It is safe for concurrent use.
type Borrowed struct {
	s      *Space
	loan   *Loan
	node   crypto.Signer // signs the run's changes
	runner peer.ID       // node's ID, the loan's Runner

	mu     sync.Mutex
	keys   keyring
	closed bool
}

// Borrow takes a loan on the runner: node is this node's key (ed25519),
// which the loan must be for, and purpose what the run runs, which the
// loan must be for too. It checks the loan's signature and chain, that it
// has not expired, runs no longer than MaxLoan, and that the space's head
// revoked no grant of its chain, then opens the keys wrapped to node.
func (m *Manager) Borrow(ctx context.Context, token []byte, node crypto.Signer, purpose string) (*Borrowed, error) {
	l, err := decodeLoan(bytes.Clone(token)) // the run keeps it to attach to its changes
	if err != nil {
		return nil, err
	}
	runner, err := identity.SignerID(node)
	if err != nil {
		return nil, fmt.Errorf("borrow: the node key: %w", err)
	}
	if err := l.checkRunner(runner, purpose); err != nil {
		return nil, err
	}
	if err := l.check(time.Now(), nil); err != nil {
		return nil, err
	}
	owner, name, _ := SplitID(l.Space()) // decodeLoan checked it
	s, err := m.Open(owner, name)
	if err != nil {
		return nil, err
	}
	b := &Borrowed{s: s, loan: l, node: node, runner: runner}
	if _, err := b.head(ctx, true); err != nil {
		return nil, err
	}
	k, err := unwrapKeysInfo(loanInfo(l.Space()), node, l.body.Keys)
	if err != nil {
		return nil, fmt.Errorf("%w: the loan's keys: %v", ErrNotAuthorised, err)
	}
	b.keys = k
	return b, nil
}

// Space is the ID of the space borrowed, OWNER/NAME.
func (b *Borrowed) Space() string { return b.loan.Space() }

// Issuer is the user whose rights the run borrows.
func (b *Borrowed) Issuer() peer.ID { return b.loan.Issuer() }

// Rights are what the loan allows.
func (b *Borrowed) Rights() Rights { return b.loan.Rights() }

// Prefix is what the keys the run reaches start with.
func (b *Borrowed) Prefix() string { return b.loan.Prefix() }

// Until is when the loan ends.
func (b *Borrowed) Until() time.Time { return b.loan.Until() }

// head resolves the space's head and checks the loan against it.
func (b *Borrowed) head(ctx context.Context, fresh bool) (*view, error) {
	v, err := b.s.resolve(ctx, fresh)
	if err != nil {
		return nil, err
	}
	if v.head.Deleted {
		return nil, fmt.Errorf("%w: space %s was deleted", ErrNotFound, b.s.id)
	}
	if err := b.loan.check(time.Now(), v.head.Revoked); err != nil {
		return nil, err
	}
	return v, nil
}

// view is the run's viewFn: the space's head with the loan's keys, in a
// view of its own that nothing caches.
func (b *Borrowed) view(ctx context.Context, fresh bool) (*view, error) {
	v, err := b.head(ctx, fresh)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("%w: the loan on %s was closed", ErrNotAuthorised, b.s.id)
	}
	return &view{head: v.head, signed: v.signed, keys: b.keys, at: v.at}, nil
}

// live refuses a call on a closed loan before it reaches the network.
func (b *Borrowed) live() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("%w: the loan on %s was closed", ErrNotAuthorised, b.s.id)
	}
	return nil
}

// Get opens key's value, if the loan lets the run read it.
func (b *Borrowed) Get(ctx context.Context, key string) (Value, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := b.loan.allows(Read, key); err != nil {
		return nil, err
	}
	if err := b.live(); err != nil {
		return nil, err
	}
	return b.s.getVia(ctx, key, b.view)
}

// GetBytes reads key's whole value.
func (b *Borrowed) GetBytes(ctx context.Context, key string) ([]byte, error) {
	v, err := b.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	return io.ReadAll(v)
}

// Put sets key to the bytes of r, if the loan lets the run write it. The
// runner node signs the change and the home checks the loan; the value
// names the loan's issuer as its writer.
func (b *Borrowed) Put(ctx context.Context, key string, r io.Reader) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := b.loan.allows(Write, key); err != nil {
		return err
	}
	if err := b.live(); err != nil {
		return err
	}
	return b.s.write(ctx, b, OpPut, key, r)
}

// PutBytes sets key to v.
func (b *Borrowed) PutBytes(ctx context.Context, key string, v []byte) error {
	return b.Put(ctx, key, bytes.NewReader(v))
}

// Delete removes key, if the loan lets the run write it.
func (b *Borrowed) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := b.loan.allows(Write, key); err != nil {
		return err
	}
	if err := b.live(); err != nil {
		return err
	}
	return b.s.write(ctx, b, OpDelete, key, nil)
}

// List lists the keys that start with prefix, which must start with the
// loan's prefix.
func (b *Borrowed) List(ctx context.Context, prefix string) ([]Item, error) {
	if err := b.loan.allows(Read, prefix); err != nil {
		return nil, err
	}
	if err := b.live(); err != nil {
		return nil, err
	}
	return b.s.listVia(ctx, prefix, b.view)
}

// Close ends the run's hold on the space: it zeroes the keys' bytes and
// drops them. Calls after fail with ErrNotAuthorised; a read still going
// fails as its keys turn to zeros. It is safe to call twice.
func (b *Borrowed) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.keys.Index)
	for _, d := range b.keys.Data {
		clear(d)
	}
	b.keys = keyring{}
	b.closed = true
}

// checkLoanChange decides whether the home applies a change made under
// the loan l: the loan is for the change's space and for the node that
// signed it, lends Write, has not ended (by the home's clock, and the
// change was made before its end: no slack is given here) and its
// issuer's chain still gives Write, none of its links revoked. The
// change itself names only the key's tag; the prefix is checked after,
// by planWrite, on the key's name in the entry the home opens (for a
// delete, the entry filed under the tag).
func checkLoanChange(l *Loan, body *changeBody, now time.Time, revoked []string) error {
	switch {
	case l.Space() != body.Space:
		return fmt.Errorf("%w: the loan is for %s, the change for %s", ErrNotAuthorised, l.Space(), body.Space)
	case l.Runner() != body.Writer:
		return fmt.Errorf("%w: the loan is for node %s, the change is signed by %s", ErrNotAuthorised, l.Runner(), body.Writer)
	case l.Rights()&Write == 0:
		return fmt.Errorf("%w: the loan gives %s, not write", ErrNotAuthorised, l.Rights())
	case body.Time > l.body.Until*int64(time.Second):
		return fmt.Errorf("%w: the change was made after the loan ended", ErrNotAuthorised)
	}
	return l.check(now, revoked)
}
