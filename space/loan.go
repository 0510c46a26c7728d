package space

import (
	"crypto"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A loan lends one run of a service, on one runner node, for one
// purpose, a user's rights on a space: to read and/or write keys under a
// prefix until a short expiry. Its issuer signs it with the user key and
// attaches the grant chain its rights come from; the space's keyring
// travels in it wrapped to the runner's node key, which holds it in
// memory for the run alone.

// Caps and bounds of a loan.
const (
	// MaxLoanSize is the largest encoded loan: a grant chain, a keyring
	// wrapped for one node (32 bytes per key epoch) and a few fields.
	MaxLoanSize = 64 << 10
	// MaxLoan is the longest a loan may run: its Until is at most this
	// long after it was signed, and after the time it is checked at.
	MaxLoan = time.Hour
	// MaxPurposeLen is the longest purpose (For) a loan names.
	MaxPurposeLen = 128
	// loanSkew is how far the clocks of the issuer and of the node that
	// checks a loan may differ before a loan seems longer than MaxLoan.
	// Expiry gets no such slack: a loan never runs past its Until.
	loanSkew = time.Minute
	// loanNonce is the length of a loan's nonce.
	loanNonce = 16
)

const loanDomain = "nube space loan v1\n"

// loanInfo binds a keyring wrapped for a runner to its space and to
// loans: a box made for a reader's head does not open as a loan's, nor
// the other way round.
func loanInfo(space string) []byte { return []byte("nube space loan keys v1 " + space) }

// loanBody is what the issuer of a loan signs.
type loanBody struct {
	Space  string  `cbor:"1,keyasint"`
	Issuer peer.ID `cbor:"2,keyasint"`
	Runner peer.ID `cbor:"3,keyasint"`
	Rights Rights  `cbor:"4,keyasint"`
	Prefix string  `cbor:"5,keyasint,omitempty"`
	Until  int64   `cbor:"6,keyasint"` // unix seconds
	For    string  `cbor:"7,keyasint"`
	Nonce  []byte  `cbor:"8,keyasint"`
	Keys   []byte  `cbor:"9,keyasint"`  // the keyring, wrapped to Runner
	Time   int64   `cbor:"10,keyasint"` // when it was signed, unix seconds
}

// loanToken is a loan as it travels: the signed body and the issuer's
// grant chain (none if the issuer owns the space).
type loanToken struct {
	Signed signed   `cbor:"1,keyasint"`
	Grant  []signed `cbor:"2,keyasint,omitempty"`
}

// Loan is a decoded loan whose signature, shape and chain were checked
// (ParseLoan); whether it holds now, for this runner and purpose, depends
// on the time, the node and the space's head.
type Loan struct {
	body  loanBody
	grant *Grant // nil if the issuer owns the space
	raw   []byte
}

// Space is the space lent, OWNER/NAME.
func (l *Loan) Space() string { return l.body.Space }

// Issuer is the user who lent its rights.
func (l *Loan) Issuer() peer.ID { return l.body.Issuer }

// Runner is the node the loan is for.
func (l *Loan) Runner() peer.ID { return l.body.Runner }

// Rights are what the loan allows: Read, Write or both.
func (l *Loan) Rights() Rights { return l.body.Rights }

// Prefix is what every key read or written under the loan starts with.
func (l *Loan) Prefix() string { return l.body.Prefix }

// Until is when the loan ends.
func (l *Loan) Until() time.Time { return time.Unix(l.body.Until, 0) }

// For is the purpose the loan is for: the module a run runs.
func (l *Loan) For() string { return l.body.For }

// ParseLoan decodes a loan and checks its size, its issuer's signature,
// its shape and its chain: an issuer that is not the space's owner must
// hold a grant, ending at it, that gives the loan's rights for at least
// as long. It does not check the time, the runner or revocations (check,
// checkRunner).
func ParseLoan(b []byte) (*Loan, error) { return decodeLoan(b) }

func decodeLoan(b []byte) (*Loan, error) {
	if len(b) > MaxLoanSize {
		return nil, fmt.Errorf("%w: a loan of %d bytes, over the limit of %d", ErrBadGrant, len(b), MaxLoanSize)
	}
	var t loanToken
	if err := unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%w: loan: %v", ErrBadGrant, err)
	}
	l := &Loan{raw: b}
	if err := unmarshal(t.Signed.Body, &l.body); err != nil {
		return nil, fmt.Errorf("%w: loan: %v", ErrBadGrant, err)
	}
	if err := checkLoanShape(l.body); err != nil {
		return nil, err
	}
	if err := verify(t.Signed, loanDomain, l.body.Issuer); err != nil {
		return nil, fmt.Errorf("%w: loan: %v", ErrBadGrant, err)
	}
	owner, _, _ := SplitID(l.body.Space) // checkLoanShape checked it
	if l.body.Issuer == owner {
		if len(t.Grant) != 0 {
			return nil, fmt.Errorf("%w: loan: the owner lends with no grant, and this one has a chain of %d", ErrBadGrant, len(t.Grant))
		}
		return l, nil
	}
	g, err := grantOf(t.Grant)
	if err != nil {
		return nil, fmt.Errorf("loan: %w", err)
	}
	if err := checkLoanChain(l.body, g); err != nil {
		return nil, err
	}
	l.grant = g
	return l, nil
}

// checkLoanShape checks what a loan says on its own: a space ID, users
// and a runner that are ed25519 keys, rights to read and/or write only,
// a prefix that is a key's, a purpose, a nonce, keys, and an Until after
// it was signed by no more than MaxLoan.
func checkLoanShape(b loanBody) error {
	if _, _, err := SplitID(b.Space); err != nil {
		return fmt.Errorf("%w: loan: %v", ErrBadGrant, err)
	}
	if _, err := userPublic(b.Issuer); err != nil {
		return fmt.Errorf("%w: loan: issuer: %v", ErrBadGrant, err)
	}
	if _, err := userPublic(b.Runner); err != nil {
		return fmt.Errorf("%w: loan: runner: %v", ErrBadGrant, err)
	}
	switch {
	case b.Rights == 0 || b.Rights&^(Read|Write) != 0:
		return fmt.Errorf("%w: loan: rights %s: a loan lends read and/or write, nothing else", ErrBadGrant, b.Rights)
	case len(b.Prefix) > MaxKeyLen:
		return fmt.Errorf("%w: loan: a prefix of %d bytes, over the limit of %d", ErrBadGrant, len(b.Prefix), MaxKeyLen)
	case b.For == "" || len(b.For) > MaxPurposeLen:
		return fmt.Errorf("%w: loan: a purpose of %d bytes (want 1 to %d)", ErrBadGrant, len(b.For), MaxPurposeLen)
	case len(b.Nonce) != loanNonce:
		return fmt.Errorf("%w: loan: a nonce of %d bytes, want %d", ErrBadGrant, len(b.Nonce), loanNonce)
	case len(b.Keys) == 0:
		return fmt.Errorf("%w: loan: no keys", ErrBadGrant)
	case b.Until <= 0 || b.Time <= 0:
		return fmt.Errorf("%w: loan: no end or no signing time", ErrBadGrant)
	case b.Until <= b.Time:
		return fmt.Errorf("%w: loan: ends before it was signed", ErrBadGrant)
	case b.Until-b.Time > int64(MaxLoan/time.Second):
		return fmt.Errorf("%w: loan: runs %v, longer than the most a loan runs (%v)", ErrBadGrant, time.Duration(b.Until-b.Time)*time.Second, MaxLoan)
	}
	return nil
}

// checkLoanChain checks that g, the grant of a loan's issuer, ends at the
// issuer, is on the loan's space, gives at least the loan's rights and
// lasts at least as long, at every link.
func checkLoanChain(b loanBody, g *Grant) error {
	switch {
	case g.Space() != b.Space:
		return fmt.Errorf("%w: loan: the grant is for %s, the loan for %s", ErrBadGrant, g.Space(), b.Space)
	case g.To() != b.Issuer:
		return fmt.Errorf("%w: loan: the grant is for %s, not the issuer %s", ErrBadGrant, g.To(), b.Issuer)
	case g.Rights()&b.Rights != b.Rights:
		return fmt.Errorf("%w: loan: lends %s under a grant that gives %s", ErrNotAuthorised, b.Rights, g.Rights())
	}
	for i, gl := range g.body {
		if gl.Until != 0 && b.Until > gl.Until {
			return fmt.Errorf("%w: loan: outlasts link %d of its grant (until %s)", ErrNotAuthorised, i, time.Unix(gl.Until, 0).UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// check says whether the loan holds at now, given the grant IDs the
// space's head revoked: not expired, not ending more than MaxLoan (and
// loanSkew) from now, and its issuer's chain still good.
func (l *Loan) check(now time.Time, revoked []string) error {
	if now.Unix() > l.body.Until {
		return fmt.Errorf("%w: the loan expired at %s", ErrNotAuthorised, l.Until().UTC().Format(time.RFC3339))
	}
	if l.Until().Sub(now) > MaxLoan+loanSkew {
		return fmt.Errorf("%w: the loan ends at %s, more than %v from now", ErrNotAuthorised, l.Until().UTC().Format(time.RFC3339), MaxLoan)
	}
	if l.grant != nil {
		if err := l.grant.check(l.body.Space, l.body.Rights, now, revoked); err != nil {
			return fmt.Errorf("the loan's grant: %w", err)
		}
	}
	return nil
}

// checkRunner says whether the loan is for runner and purpose.
func (l *Loan) checkRunner(runner peer.ID, purpose string) error {
	if l.body.Runner != runner {
		return fmt.Errorf("%w: the loan is for node %s, not %s", ErrNotAuthorised, l.body.Runner, runner)
	}
	if l.body.For != purpose {
		return fmt.Errorf("%w: the loan is for %q, not %q", ErrNotAuthorised, l.body.For, purpose)
	}
	return nil
}

// allows says whether the loan allows want on key (a key, or a prefix
// to list): the loan gives want, and key starts with the loan's prefix.
func (l *Loan) allows(want Rights, key string) error {
	if l.body.Rights&want != want {
		return fmt.Errorf("%w: the loan gives %s, not %s", ErrNotAuthorised, l.body.Rights, want)
	}
	if !strings.HasPrefix(key, l.body.Prefix) {
		return fmt.Errorf("%w: %q is outside the loan's prefix %q", ErrNotAuthorised, key, l.body.Prefix)
	}
	return nil
}

// signLoan signs b with key and attaches g (nil for the owner).
func signLoan(key crypto.Signer, b loanBody, g *Grant) ([]byte, error) {
	sg, err := sign(key, loanDomain, b)
	if err != nil {
		return nil, err
	}
	t := loanToken{Signed: sg}
	if g != nil {
		t.Grant = slices.Clone(g.links)
	}
	return marshal(t)
}
