package service

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
)

// Caps on capabilities. A capability lives for minutes: long enough for a
// run to be fetched, compiled and run, too short to be worth stealing.
const (
	// MaxCapabilitySize caps an encoded capability, its space loans
	// included.
	MaxCapabilitySize = 256 << 10
	// MaxCapabilityLife is the longest a capability may be valid.
	MaxCapabilityLife = time.Hour
	// MaxDepth is the deepest calls may nest: a run calling a service
	// whose run calls another, and so on.
	MaxDepth = 8
	// DefaultDepth is how deep a run's nested calls may go unless its
	// caller says otherwise.
	DefaultDepth = 2
	maxAllows    = 32
	maxAllowLen  = 512
	maxLoanToken = 64 << 10
)

// capDomain is what a caller's user key signs a capability under.
const capDomain = "nube run capability v1\n"

// Access is what a run may do in one space.
type Access uint8

// The accesses a run can be given. Write includes Read.
const (
	Read  Access = 1
	Write Access = 3
)

func (a Access) String() string {
	switch a {
	case Read:
		return "read"
	case Write:
		return "write"
	}
	return fmt.Sprintf("access(%d)", uint8(a))
}

// Allow is one right a caller hands a run, as `nube call --allow` takes
// it: "space:OWNER/NAME[:read|:write][:PREFIX]" or "call:REF".
type Allow struct {
	// Space is the space as OWNER/NAME, for a space right.
	Space  string `json:"space,omitempty"`
	Access Access `json:"access,omitempty"`
	// Prefix limits the keys the run may touch; empty is every key.
	Prefix string `json:"prefix,omitempty"`
	// Call is a service the run may call: a name, name@version or a
	// descriptor CID, as the module will name it.
	Call string `json:"call,omitempty"`
}

func (a Allow) String() string {
	if a.Call != "" {
		return "call:" + a.Call
	}
	s := "space:" + a.Space + ":" + a.Access.String()
	if a.Prefix != "" {
		s += ":" + a.Prefix
	}
	return s
}

// ParseAllow parses one right in the form `nube call --allow` takes.
// A space right without an access reads; "write" lets the run read too.
// A space named without its owner is the caller's own (Pipeline.Allow
// names the owner).
func ParseAllow(s string) (Allow, error) {
	bad := func(why string) (Allow, error) {
		return Allow{}, fmt.Errorf("%w: --allow %q: %s (want space:OWNER/NAME[:read|:write][:PREFIX] or call:NAME)", ErrBadCapability, s, why)
	}
	if len(s) > maxAllowLen {
		return bad(fmt.Sprintf("%d bytes, the limit is %d", len(s), maxAllowLen))
	}
	kind, rest, ok := strings.Cut(s, ":")
	switch {
	case !ok || rest == "":
		return bad("nothing after the kind")
	case kind == "call":
		if strings.ContainsAny(rest, " \t\r\n|") {
			return bad("a call right names one service")
		}
		return Allow{Call: rest}, nil
	case kind != "space":
		return bad("unknown kind " + kind)
	}
	name, rest, _ := strings.Cut(rest, ":")
	if owner, sp, ok := strings.Cut(name, "/"); name == "" || ok && (owner == "" || sp == "" || strings.Contains(sp, "/")) {
		return bad("a space is OWNER/NAME, or NAME for one of the caller's own")
	}
	a := Allow{Space: name, Access: Read}
	access, prefix, hasPrefix := strings.Cut(rest, ":")
	switch access {
	case "read", "":
	case "write":
		a.Access = Write
	default:
		// No access named: the field is the prefix.
		access, prefix, hasPrefix = "", rest, true
	}
	if hasPrefix {
		a.Prefix = prefix
	}
	return a, nil
}

// Capability is what a caller lets one run do: signed by the caller's
// user key, for one module on one node, until a short expiry. A run may
// touch only what its capability names; without one it may touch nothing
// but content, which is public by its CID.
type Capability struct {
	// Issuer is the caller's user, who signed it.
	Issuer peer.ID
	// Runner is the node the run is for.
	Runner peer.ID
	// Module is the module the run is of.
	Module cid.Cid
	// Allows are the spaces and services the run may use.
	Allows []Allow
	// Depth is how deep the run's own calls may nest.
	Depth int
	// Budget is the most the run's nested calls may cost, in
	// millicredits.
	Budget uint64
	// Until is when the capability ends.
	Until time.Time

	loans [][]byte // a space loan per space right, in Allows' order
}

type allowWire struct {
	Space  string `cbor:"1,keyasint,omitempty"`
	Access Access `cbor:"2,keyasint,omitempty"`
	Prefix string `cbor:"3,keyasint,omitempty"`
	Call   string `cbor:"4,keyasint,omitempty"`
	Loan   []byte `cbor:"5,keyasint,omitempty"`
}

type capBody struct {
	Issuer []byte      `cbor:"1,keyasint"` // ed25519 public key
	Runner string      `cbor:"2,keyasint"`
	Module []byte      `cbor:"3,keyasint"`
	Allows []allowWire `cbor:"4,keyasint,omitempty"`
	Depth  int         `cbor:"5,keyasint,omitempty"`
	Budget uint64      `cbor:"6,keyasint,omitempty"`
	Until  int64       `cbor:"7,keyasint"`
	Nonce  []byte      `cbor:"8,keyasint"`
}

func (b *capBody) Signer() (peer.ID, error) {
	if len(b.Issuer) != ed25519.PublicKeySize {
		return "", fmt.Errorf("%w: issuer key is %d bytes, want %d", ErrBadCapability, len(b.Issuer), ed25519.PublicKeySize)
	}
	return identity.ID(ed25519.PublicKey(b.Issuer))
}

// sign encodes c and signs it with key, which must be c.Issuer's.
func (c *Capability) sign(key crypto.Signer) ([]byte, error) {
	id, err := identity.SignerID(key)
	if err != nil {
		return nil, err
	}
	c.Issuer = id
	if err := c.check(time.Now()); err != nil {
		return nil, err
	}
	b := capBody{
		Issuer: key.Public().(ed25519.PublicKey), Runner: c.Runner.String(), Module: c.Module.Bytes(),
		Depth: c.Depth, Budget: c.Budget, Until: c.Until.Unix(), Nonce: randomNonce(),
	}
	for i, a := range c.Allows {
		w := allowWire{Space: a.Space, Access: a.Access, Prefix: a.Prefix, Call: a.Call}
		if a.Space != "" {
			w.Loan = c.loans[i]
		}
		b.Allows = append(b.Allows, w)
	}
	e, err := identity.Seal(key, capDomain, &b)
	if err != nil {
		return nil, err
	}
	raw, err := wire.Marshal(e)
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxCapabilitySize {
		return nil, fmt.Errorf("%w: %d bytes encoded, the limit is %d", ErrBadCapability, len(raw), MaxCapabilitySize)
	}
	return raw, nil
}

// ParseCapability decodes a capability and checks its signature and its
// shape, not its expiry or whom it is for (checkFor does, on the runner).
func ParseCapability(raw []byte) (*Capability, error) {
	if len(raw) > MaxCapabilitySize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadCapability, len(raw), MaxCapabilitySize)
	}
	var e identity.Envelope
	if err := wire.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCapability, err)
	}
	var b capBody
	issuer, err := e.Open(capDomain, &b)
	if err != nil {
		if errors.Is(err, ErrBadCapability) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrBadCapability, err)
	}
	c := &Capability{Issuer: issuer, Depth: b.Depth, Budget: b.Budget, Until: time.Unix(b.Until, 0)}
	if c.Runner, err = peer.Decode(b.Runner); err != nil {
		return nil, fmt.Errorf("%w: runner: %v", ErrBadCapability, err)
	}
	if c.Module, err = cid.Cast(b.Module); err != nil {
		return nil, fmt.Errorf("%w: module: %v", ErrBadCapability, err)
	}
	if len(b.Allows) > maxAllows {
		return nil, fmt.Errorf("%w: %d rights, the limit is %d", ErrBadCapability, len(b.Allows), maxAllows)
	}
	for _, w := range b.Allows {
		if len(w.Loan) > maxLoanToken {
			return nil, fmt.Errorf("%w: a space loan of %d bytes, the limit is %d", ErrBadCapability, len(w.Loan), maxLoanToken)
		}
		c.Allows = append(c.Allows, Allow{Space: w.Space, Access: w.Access, Prefix: w.Prefix, Call: w.Call})
		c.loans = append(c.loans, w.Loan)
	}
	if err := c.shape(); err != nil {
		return nil, err
	}
	for i, a := range c.Allows {
		if a.Space != "" && len(c.loans[i]) == 0 {
			return nil, fmt.Errorf("%w: the right on %s carries no loan of the space", ErrBadCapability, a.Space)
		}
	}
	return c, nil
}

// shape checks the fields that do not depend on the time.
func (c *Capability) shape() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadCapability, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Depth < 0 || c.Depth > MaxDepth:
		return bad("depth %d is out of range 0 to %d", c.Depth, MaxDepth)
	case len(c.Allows) > maxAllows:
		return bad("%d rights, the limit is %d", len(c.Allows), maxAllows)
	case !c.Module.Defined():
		return bad("it names no module")
	}
	for _, a := range c.Allows {
		if len(a.Space)+len(a.Prefix)+len(a.Call) > maxAllowLen {
			return bad("a right of over %d bytes", maxAllowLen)
		}
		switch {
		case a.Call != "" && a.Space == "" && a.Access == 0 && a.Prefix == "":
		case a.Space != "" && a.Call == "" && (a.Access == Read || a.Access == Write):
		default:
			return bad("a right that is neither a space's nor a call's: %+v", a)
		}
	}
	return nil
}

// check checks c as its issuer makes it, at now.
func (c *Capability) check(now time.Time) error {
	if err := c.shape(); err != nil {
		return err
	}
	if !c.Until.After(now) || c.Until.Sub(now) > MaxCapabilityLife {
		return fmt.Errorf("%w: valid until %s, want within %v from now", ErrBadCapability, c.Until.UTC().Format(time.RFC3339), MaxCapabilityLife)
	}
	return nil
}

// checkFor checks that c lets a run of module on node runner, for
// caller's user, go ahead at now.
func (c *Capability) checkFor(caller, runner peer.ID, module cid.Cid, now time.Time) error {
	switch {
	case c.Issuer != caller:
		return fmt.Errorf("%w: the capability is %s's, and the caller's user is %s", ErrNotAllowed, c.Issuer, caller)
	case c.Runner != runner:
		return fmt.Errorf("%w: the capability is for node %s, not this one (%s)", ErrNotAllowed, c.Runner, runner)
	case !c.Module.Equals(module):
		return fmt.Errorf("%w: the capability is for module %s, not %s", ErrNotAllowed, c.Module, module)
	case !now.Before(c.Until):
		return fmt.Errorf("%w: the capability expired at %s", ErrNotAllowed, c.Until.UTC().Format(time.RFC3339))
	case c.Until.Sub(now) > MaxCapabilityLife:
		return fmt.Errorf("%w: the capability is valid for %v, longer than the most (%v)", ErrNotAllowed, c.Until.Sub(now).Round(time.Second), MaxCapabilityLife)
	}
	return nil
}

// space returns the right c gives on space, and its loan.
func (c *Capability) space(name string) (Allow, []byte, bool) {
	if c == nil {
		return Allow{}, nil, false
	}
	for i, a := range c.Allows {
		if a.Space == name {
			return a, c.loans[i], true
		}
	}
	return Allow{}, nil, false
}

// mayCall reports whether c lets the run call ref.
func (c *Capability) mayCall(ref string) bool {
	if c == nil {
		return false
	}
	return slices.ContainsFunc(c.Allows, func(a Allow) bool { return a.Call != "" && a.Call == ref })
}

// checkWants says what a call's rights lack of what d declares it needs,
// before anything runs: nil if nothing.
func checkWants(d *Descriptor, allows []Allow) error {
	var missing []string
	for _, w := range d.Wants {
		kind, arg, _ := strings.Cut(w, ":")
		ok := false
		switch kind {
		case "space":
			need := Read
			if arg == "write" {
				need = Write
			}
			ok = slices.ContainsFunc(allows, func(a Allow) bool { return a.Space != "" && a.Access&need == need })
			if !ok {
				missing = append(missing, fmt.Sprintf("%s on a space (--allow space:OWNER/NAME:%s)", need, need))
			}
		case "call":
			ok = slices.ContainsFunc(allows, func(a Allow) bool { return a.Call == arg })
			if !ok {
				missing = append(missing, fmt.Sprintf("calls to %s (--allow call:%s)", arg, arg))
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s needs %s, and the call grants none", ErrNotAllowed, d.Label(), strings.Join(missing, " and "))
}

// checkWant reports whether w is a want a descriptor may declare.
func checkWant(w string) error {
	kind, arg, _ := strings.Cut(w, ":")
	switch {
	case kind == "space" && (arg == "read" || arg == "write"):
		return nil
	case kind == "call" && arg != "" && len(arg) <= maxAllowLen && !strings.ContainsAny(arg, " \t\r\n|"):
		return nil
	}
	return fmt.Errorf("%w: want %q: use space:read, space:write or call:NAME", ErrBadDescriptor, w)
}

// Spaces is what the service layer uses of the space layer. The facade
// gives a *space.Manager behind it, with the node's key for Borrow.
type Spaces interface {
	// Lend signs, with the caller's user key, a loan of its rights in
	// space (OWNER/NAME) to one run of module purpose on node runner:
	// read, or read and write, keys under prefix, until until. It fails
	// if the caller's own rights are narrower.
	Lend(ctx context.Context, space string, runner peer.ID, write bool, prefix, purpose string, until time.Time) ([]byte, error)
	// Borrow checks a loan on the runner, for a run of module purpose,
	// and opens the space with the keys it carries.
	Borrow(ctx context.Context, loan []byte, purpose string) (SpaceLoan, error)
	// Inspect decodes a loan and checks its signature, without the
	// space: what a runner compares with the right that carries it.
	Inspect(loan []byte) (LoanTerms, error)
}

// LoanTerms are what a space loan says.
type LoanTerms struct {
	Space   string
	Issuer  peer.ID
	Runner  peer.ID
	Write   bool
	Prefix  string
	Purpose string
	Until   time.Time
}

// checkLoan checks that loan is what right a says it is: the same space,
// issued by the capability's issuer to this runner for this module,
// giving the right's access under a prefix the right's starts with.
func (c *Capability) checkLoan(a Allow, l LoanTerms) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: the loan carried for %s %s", ErrNotAllowed, a.Space, fmt.Sprintf(format, args...))
	}
	switch {
	case l.Space != a.Space:
		return bad("is for space %s", l.Space)
	case l.Issuer != c.Issuer:
		return bad("is %s's, and the capability %s's", l.Issuer, c.Issuer)
	case l.Runner != c.Runner:
		return bad("is for node %s", l.Runner)
	case l.Purpose != c.Module.String():
		return bad("is for %q, not module %s", l.Purpose, c.Module)
	case a.Access == Write && !l.Write:
		return bad("gives read only, and the right is write")
	case !strings.HasPrefix(a.Prefix, l.Prefix):
		return bad("is under prefix %q, which the right's %q does not start with", l.Prefix, a.Prefix)
	case l.Until.After(c.Until.Add(time.Minute)):
		return bad("outlasts the capability")
	}
	return nil
}

// SpaceLoan is a space as one run sees it: its keys in memory until
// Close, which forgets them.
type SpaceLoan interface {
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	Put(ctx context.Context, key string, r io.Reader) error
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) ([]string, error)
	Close()
}

// randomNonce returns 16 random bytes.
func randomNonce() []byte {
	b := make([]byte, 16)
	rand.Read(b)
	return b
}

// maxCaps caps the capabilities a node keeps, signed or checked.
const maxCaps = 1024

// capCache keeps capabilities by key until they end: the ones this node
// signed for calls that lend no space, and the ones it checked as a
// runner (by their bytes).
type capCache struct {
	mu sync.Mutex
	m  map[string]cachedCap
}

type cachedCap struct {
	raw   []byte
	cap   *Capability
	until time.Time
}

// get returns the bytes kept under key if they stay valid for at least
// left more.
func (c *capCache) get(key string, left time.Duration) ([]byte, bool) {
	e, ok := c.entry(key, left)
	return e.raw, ok
}

func (c *capCache) entry(key string, left time.Duration) (cachedCap, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || time.Until(e.until) < left {
		return cachedCap{}, false
	}
	return e, true
}

func (c *capCache) put(key string, raw []byte, until time.Time) {
	c.keep(key, cachedCap{raw: raw, until: until})
}

func (c *capCache) keep(key string, e cachedCap) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCaps {
		c.m = map[string]cachedCap{}
	}
	c.m[key] = e
}
