package space

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
)

// Caps on what a node decodes from others, each checked before decoding.
const (
	// MaxHeadSize is the largest encoded head accepted. A head carries the
	// wrapped keys of every reader (about 150 bytes each, plus 32 per
	// epoch), so this leaves room for thousands.
	MaxHeadSize = 1 << 20
	// MaxGrantSize is the largest encoded grant (a chain of delegations).
	MaxGrantSize = 16 << 10
	// MaxGrantChain is the longest chain of delegations.
	MaxGrantChain = 8
	// maxLinkBody is the largest encoded link of a grant: a link with the
	// longest space name, an end and a full nonce takes about 250 bytes;
	// the rest is room for fields a newer version may add.
	maxLinkBody = 512
	// maxNonce is the longest nonce of a grant's link (Grant makes 8
	// bytes).
	maxNonce = 32
	// MaxChangeSize is the largest encoded change, blocks carried inline
	// included.
	MaxChangeSize = 2 << 20
)

// Caps on the grants a home files for one space: each grant to read puts
// its grantee's wrapped keys in every head after, so without them a
// delegate could grow the head past MaxHeadSize.
const (
	// MaxGrants is the most grants filed on a space, the owner's
	// included. A reader's wrapped keys take 165 bytes of the head at the
	// first key epoch and 34 more for each epoch after: with every grant
	// a reader, a head is about 49 KB, under a twentieth of MaxHeadSize,
	// with room for over a hundred key rotations (TestGrantCapsFitTheHead).
	// Uncapped, some 6,400 readers carried a head over the limit.
	MaxGrants = 256
	// MaxGrantsPerIssuer is the most grants filed under one delegate:
	// those it signed and those signed under its delegations, so that
	// the fresh keys it delegates to (Sybils) share its count. One
	// delegate can take an eighth of MaxGrants; the rest stays for the
	// owner and the other delegates. The owner's own grants count only
	// towards MaxGrants.
	MaxGrantsPerIssuer = 32
)

// The pace of filings under one delegate (a token bucket each): every
// filing signs a head and pushes it to every holder, and a grant that
// expires makes the home rotate the space's keys.
const (
	// GrantBurst is how many grants may be filed under a delegate at
	// once: enough to share a space with a team in one go.
	GrantBurst = 16
	// GrantEvery is how often one more may be filed under a delegate once
	// its burst is spent.
	GrantEvery = time.Minute
)

// Domain separation for everything a user key signs here.
const (
	headDomain   = "nube space head v1\n"
	grantDomain  = "nube space grant v1\n"
	changeDomain = "nube space change v1\n"
)

func marshal(v any) ([]byte, error) { return wire.Marshal(v) }

func unmarshal(b []byte, v any) error { return wire.Unmarshal(b, v) }

// signed is a record and its signer's signature over the domain and the
// record's exact bytes: the envelope every layer signs with.
type signed = identity.Envelope

func sign(key crypto.Signer, domain string, v any) (signed, error) {
	return identity.Seal(key, domain, v)
}

// verify checks that by, a user, signed s under domain.
func verify(s signed, domain string, by peer.ID) error {
	if _, err := userPublic(by); err != nil {
		return err
	}
	if err := s.Verify(domain, by); err != nil {
		return fmt.Errorf("%w: signature of %s does not verify", ErrForged, by)
	}
	return nil
}

// Policy says where a space's copies live besides its home (the owner's
// node that created it, which always keeps one).
type Policy struct {
	// Local keeps the space on the home alone. It excludes On and Replicas.
	Local bool `cbor:"1,keyasint,omitempty" json:"local,omitempty"`
	// On names nodes that must hold a copy.
	On []peer.ID `cbor:"2,keyasint,omitempty" json:"on,omitempty"`
	// Replicas is how many nodes other than the home hold a copy, On
	// included; the rest are picked among the peers that offer storage. Zero
	// means as many as On names.
	Replicas int `cbor:"3,keyasint,omitempty" json:"replicas,omitempty"`
	// Public stores the space's values unsealed: a value is the UnixFS
	// file its bytes make, as content.Add makes it, so a site published
	// from the space (or any add of the same bytes) shares its blocks,
	// and anyone who has a value's CID reads it. Key names and entries
	// stay sealed. It is set when the space is created and kept by every
	// migration.
	Public bool `cbor:"4,keyasint,omitempty" json:"public,omitempty"`
}

// Validate reports a policy that contradicts itself.
func (p Policy) Validate() error {
	switch {
	case p.Local && (len(p.On) > 0 || p.Replicas > 0):
		return fmt.Errorf("%w: a local space has no other holders (--local excludes --on and --replicas)", ErrBadPolicy)
	case p.Replicas < 0 || p.Replicas > 64:
		return fmt.Errorf("%w: replicas %d: want 0 to 64", ErrBadPolicy, p.Replicas)
	case !p.Local && len(p.On) == 0 && p.Replicas == 0:
		return fmt.Errorf("%w: say where the space lives: local, on named nodes, or a number of replicas", ErrBadPolicy)
	}
	seen := map[peer.ID]bool{}
	for _, o := range p.On {
		if o == "" || seen[o] {
			return fmt.Errorf("%w: holder %q named twice or empty", ErrBadPolicy, o)
		}
		seen[o] = true
	}
	return nil
}

// copies is how many holders the policy wants.
func (p Policy) copies() int { return max(p.Replicas, len(p.On)) }

// String says the policy in a few words, peer IDs shortened, for
// display.
func (p Policy) String() string {
	var parts []string
	if p.Local {
		parts = append(parts, "local")
	}
	for _, o := range p.On {
		s := o.String()
		if len(s) > 16 {
			s = s[:8] + "…" + s[len(s)-6:]
		}
		parts = append(parts, "on "+s)
	}
	if p.Replicas > len(p.On) {
		parts = append(parts, fmt.Sprintf("%d replicas", p.Replicas))
	}
	if p.Public {
		parts = append(parts, "public")
	}
	return strings.Join(parts, ", ")
}

// Op is what a change did to a key.
type Op uint8

// The ops.
const (
	OpPut    Op = 1
	OpDelete Op = 2
)

func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// headChange is one change a head records: its key's tag and the key
// name sealed under the head's epoch, for watchers.
type headChange struct {
	Op   Op     `cbor:"1,keyasint"`
	Tag  string `cbor:"2,keyasint"`
	Name []byte `cbor:"3,keyasint"`
}

// sealedKeys is the keyring wrapped for one reader.
type sealedKeys struct {
	User peer.ID `cbor:"1,keyasint"`
	Box  []byte  `cbor:"2,keyasint"`
}

// head is the state of a space at one sequence number, as its owner signs
// it.
type head struct {
	Owner   peer.ID      `cbor:"1,keyasint"`
	Name    string       `cbor:"2,keyasint"`
	Seq     uint64       `cbor:"3,keyasint"`
	Root    []byte       `cbor:"4,keyasint"` // CID of the space's root node
	Home    peer.ID      `cbor:"5,keyasint"`
	Policy  Policy       `cbor:"6,keyasint"`
	Holders []peer.ID    `cbor:"7,keyasint,omitempty"`
	Epoch   uint64       `cbor:"8,keyasint"`
	Keys    []sealedKeys `cbor:"9,keyasint,omitempty"`
	Revoked []string     `cbor:"10,keyasint,omitempty"` // grant IDs
	Changes []headChange `cbor:"11,keyasint,omitempty"`
	Count   uint64       `cbor:"12,keyasint"` // keys in the space
	Bytes   uint64       `cbor:"13,keyasint"` // bytes of plaintext values
	Time    int64        `cbor:"14,keyasint"` // unix nanoseconds
	Deleted bool         `cbor:"15,keyasint,omitempty"`
	// Chain is the delegation the head is signed under when its home
	// does not hold the user key (handover.go); empty, the owner signed.
	Chain []signed `cbor:"16,keyasint,omitempty"`
	// Delegates are the nodes the home was ever handed to (handover.go),
	// so that a home with the user key can tell which the user removed.
	Delegates []peer.ID `cbor:"17,keyasint,omitempty"`
	// Removed are those of Delegates the user removed: no head signed
	// under a link to one is taken. Readers remember those of a head the
	// user key signed (Manager.removedOf), so a removed node's later head,
	// which leaves them out, is refused all the same.
	Removed []peer.ID `cbor:"18,keyasint,omitempty"`
}

func (h *head) id() string { return h.Owner.String() + "/" + h.Name }

func (h *head) root() (cid.Cid, error) {
	c, err := cid.Cast(h.Root)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: root: %v", ErrBadHead, err)
	}
	return c, nil
}

func (h *head) holds(p peer.ID) bool { return slices.Contains(h.Holders, p) }

func (h *head) keysFor(u peer.ID) []byte {
	for _, k := range h.Keys {
		if k.User == u {
			return k.Box
		}
	}
	return nil
}

// decodeHead decodes and checks a signed head: its size, its shape and its
// owner's signature. want, if set, is the space it must be of.
func decodeHead(b []byte, want string) (*head, signed, error) {
	return decodeHeadUpTo(b, want, MaxHeadSize)
}

// decodeHeadUpTo is decodeHead with a size limit of its own: a home
// loads its own stored head up to maxStoredHead, to serve what it can of
// a space whose head outgrew MaxHeadSize.
func decodeHeadUpTo(b []byte, want string, limit int) (*head, signed, error) {
	var s signed
	if len(b) > limit {
		return nil, s, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrBadHead, len(b), limit)
	}
	if err := unmarshal(b, &s); err != nil {
		return nil, s, fmt.Errorf("%w: %v", ErrBadHead, err)
	}
	var h head
	if err := unmarshal(s.Body, &h); err != nil {
		return nil, s, fmt.Errorf("%w: %v", ErrBadHead, err)
	}
	if err := checkName(h.Name); err != nil {
		return nil, s, fmt.Errorf("%w: %v", ErrBadHead, err)
	}
	if want != "" && h.id() != want {
		return nil, s, fmt.Errorf("%w: head of %s, not of %s", ErrBadHead, h.id(), want)
	}
	if _, err := h.root(); err != nil {
		return nil, s, err
	}
	if h.Home.Validate() != nil {
		return nil, s, fmt.Errorf("%w: home %q", ErrBadHead, h.Home)
	}
	by, err := checkChain(h.Owner, h.id(), h.Chain)
	if err != nil {
		return nil, s, fmt.Errorf("head of %s: %w", h.id(), err)
	}
	if err := verify(s, headDomain, by); err != nil {
		return nil, s, fmt.Errorf("head of %s: %w", h.id(), err)
	}
	if err := chainAvoids(h.Chain, h.Removed); err != nil {
		return nil, s, fmt.Errorf("head of %s: %w", h.id(), err)
	}
	return &h, s, nil
}

// Rights are what a grant allows.
type Rights uint8

// The rights.
const (
	Read     Rights = 1
	Write    Rights = 2
	Delegate Rights = 4
)

func (r Rights) String() string {
	var parts []string
	for _, x := range []struct {
		r Rights
		s string
	}{{Read, "read"}, {Write, "write"}, {Delegate, "delegate"}} {
		if r&x.r != 0 {
			parts = append(parts, x.s)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// grantLink is one step of a grant: Issuer gives To the rights on Space
// until Until (unix seconds; zero is no end).
type grantLink struct {
	Space  string  `cbor:"1,keyasint"`
	Issuer peer.ID `cbor:"2,keyasint"`
	To     peer.ID `cbor:"3,keyasint"`
	Rights Rights  `cbor:"4,keyasint"`
	Until  int64   `cbor:"5,keyasint,omitempty"`
	Nonce  []byte  `cbor:"6,keyasint"`
}

// Grant is a capability on a space: a chain of signed links, the first
// issued by the space's owner, each next one by the previous one's
// grantee under its Delegate right, none wider or longer than the one
// before.
type Grant struct {
	links []signed
	body  []grantLink
}

// ID is the grant's last link's ID, the one Revoke takes.
func (g *Grant) ID() string { return linkID(g.links[len(g.links)-1]) }

// To is the user the grant is for.
func (g *Grant) To() peer.ID { return g.body[len(g.body)-1].To }

// Issuer is the user who signed the grant's last link.
func (g *Grant) Issuer() peer.ID { return g.body[len(g.body)-1].Issuer }

// Rights are what the grant allows.
func (g *Grant) Rights() Rights { return g.body[len(g.body)-1].Rights }

// Space is the space the grant is on, as OWNER/NAME.
func (g *Grant) Space() string { return g.body[0].Space }

// Until is when the grant ends; the zero time means never.
func (g *Grant) Until() time.Time {
	if u := g.body[len(g.body)-1].Until; u != 0 {
		return time.Unix(u, 0)
	}
	return time.Time{}
}

// delegates lists the users who signed the grant's links under a
// delegation: every issuer but the owner, each once.
func (g *Grant) delegates() []peer.ID {
	var out []peer.ID
	owner := g.body[0].Issuer
	for _, l := range g.body[1:] {
		if l.Issuer != owner && !slices.Contains(out, l.Issuer) {
			out = append(out, l.Issuer)
		}
	}
	return out
}

// Chain lists the IDs of the grant's links, the owner's first.
func (g *Grant) Chain() []string {
	out := make([]string, len(g.links))
	for i, l := range g.links {
		out[i] = linkID(l)
	}
	return out
}

// Token is the grant as text, to hand to its grantee or keep.
func (g *Grant) Token() string {
	b, _ := marshal(g.links)
	return "nubegrant1:" + base64.RawURLEncoding.EncodeToString(b)
}

func linkID(s signed) string {
	h := sha256.Sum256(append([]byte(grantDomain), s.Body...))
	return hex.EncodeToString(h[:16])
}

// ParseGrant decodes a grant token and checks its signatures and the
// rules of its chain (but not expiry or revocation, which depend on the
// time and the space's head).
func ParseGrant(token string) (*Grant, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(token), "nubegrant1:")
	if !ok {
		return nil, fmt.Errorf("%w: a grant token starts with \"nubegrant1:\"", ErrBadGrant)
	}
	if len(rest) > base64.RawURLEncoding.EncodedLen(MaxGrantSize) {
		return nil, fmt.Errorf("%w: over the limit of %d bytes", ErrBadGrant, MaxGrantSize)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadGrant, err)
	}
	return decodeGrant(b)
}

func decodeGrant(b []byte) (*Grant, error) {
	if len(b) > MaxGrantSize {
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrBadGrant, len(b), MaxGrantSize)
	}
	var links []signed
	if err := unmarshal(b, &links); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadGrant, err)
	}
	return grantOf(links)
}

// grantOf decodes and checks a chain of links.
func grantOf(links []signed) (*Grant, error) {
	if len(links) == 0 || len(links) > MaxGrantChain {
		return nil, fmt.Errorf("%w: a chain of %d links (want 1 to %d)", ErrBadGrant, len(links), MaxGrantChain)
	}
	g := &Grant{links: links, body: make([]grantLink, len(links))}
	for i, l := range links {
		gl := &g.body[i]
		if len(l.Body) > maxLinkBody {
			return nil, fmt.Errorf("%w: link %d: %d bytes, over the limit of %d", ErrBadGrant, i, len(l.Body), maxLinkBody)
		}
		if err := unmarshal(l.Body, gl); err != nil {
			return nil, fmt.Errorf("%w: link %d: %v", ErrBadGrant, i, err)
		}
		if len(gl.Nonce) > maxNonce {
			return nil, fmt.Errorf("%w: link %d: a nonce of %d bytes, over the limit of %d", ErrBadGrant, i, len(gl.Nonce), maxNonce)
		}
		if err := verify(l, grantDomain, gl.Issuer); err != nil {
			return nil, fmt.Errorf("%w: link %d: %v", ErrBadGrant, i, err)
		}
		if gl.Rights == 0 || gl.Rights&^(Read|Write|Delegate) != 0 {
			return nil, fmt.Errorf("%w: link %d: rights %d", ErrBadGrant, i, gl.Rights)
		}
		if _, err := userPublic(gl.To); err != nil {
			return nil, fmt.Errorf("%w: link %d: grantee: %v", ErrBadGrant, i, err)
		}
		if i == 0 {
			owner, name, err := SplitID(gl.Space)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadGrant, err)
			}
			if gl.Issuer != owner {
				return nil, fmt.Errorf("%w: the first link is signed by %s, not by the owner of %s", ErrBadGrant, gl.Issuer, name)
			}
			continue
		}
		p := g.body[i-1]
		switch {
		case gl.Space != p.Space:
			return nil, fmt.Errorf("%w: link %d is for space %s, its parent for %s", ErrBadGrant, i, gl.Space, p.Space)
		case gl.Issuer != p.To:
			return nil, fmt.Errorf("%w: link %d is signed by %s, not by its parent's grantee %s", ErrBadGrant, i, gl.Issuer, p.To)
		case p.Rights&Delegate == 0:
			return nil, fmt.Errorf("%w: link %d delegates a grant that has no delegate right", ErrBadGrant, i)
		case gl.Rights&^p.Rights != 0:
			return nil, fmt.Errorf("%w: link %d widens rights from %s to %s", ErrBadGrant, i, p.Rights, gl.Rights)
		case p.Until != 0 && (gl.Until == 0 || gl.Until > p.Until):
			return nil, fmt.Errorf("%w: link %d outlasts its parent (until %s)", ErrBadGrant, i, time.Unix(p.Until, 0).UTC().Format(time.RFC3339))
		}
	}
	return g, nil
}

// check says whether the grant allows want on space now, given the IDs a
// head revoked.
func (g *Grant) check(space string, want Rights, now time.Time, revoked []string) error {
	if g.Space() != space {
		return fmt.Errorf("%w: the grant is for %s, not %s", ErrNotAuthorised, g.Space(), space)
	}
	for i, l := range g.body {
		if l.Until != 0 && now.Unix() > l.Until {
			return fmt.Errorf("%w: grant expired at %s", ErrNotAuthorised, time.Unix(l.Until, 0).UTC().Format(time.RFC3339))
		}
		if slices.Contains(revoked, linkID(g.links[i])) {
			return fmt.Errorf("%w: grant %s was revoked", ErrNotAuthorised, linkID(g.links[i]))
		}
	}
	if g.Rights()&want != want {
		return fmt.Errorf("%w: the grant gives %s, not %s", ErrNotAuthorised, g.Rights(), want)
	}
	return nil
}

// extend signs a new link under g (nil for the owner's first link).
func extend(g *Grant, key crypto.Signer, l grantLink) (*Grant, error) {
	s, err := sign(key, grantDomain, l)
	if err != nil {
		return nil, err
	}
	var links []signed
	if g != nil {
		links = slices.Clone(g.links)
	}
	return grantOf(append(links, s))
}

// changeBody is a write that a node other than the home asks the home to
// apply, signed by the writer's user key.
type changeBody struct {
	Space  string  `cbor:"1,keyasint"`
	Writer peer.ID `cbor:"2,keyasint"`
	Op     Op      `cbor:"3,keyasint"`
	Tag    string  `cbor:"4,keyasint"`
	Entry  []byte  `cbor:"5,keyasint,omitempty"` // CID of the entry, for a put
	Nonce  []byte  `cbor:"6,keyasint"`
	Time   int64   `cbor:"7,keyasint"` // unix nanoseconds
}

// block is a block carried inline, its CID beside it (checked on receipt).
type block struct {
	CID  []byte `cbor:"1,keyasint"`
	Data []byte `cbor:"2,keyasint"`
}

// change is a signed changeBody with the writer's grant (none for the
// owner) or, for a run's write, the loan the runner node writes under,
// and, for small values, the entry's and value's blocks.
type change struct {
	Signed signed   `cbor:"1,keyasint"`
	Grant  []signed `cbor:"2,keyasint,omitempty"`
	Blocks []block  `cbor:"3,keyasint,omitempty"`
	Loan   []byte   `cbor:"4,keyasint,omitempty"`
}

// decodeChange decodes a change and checks its size, its shape and its
// writer's signature (not its rights, which need the space's state).
func decodeChange(b []byte) (*change, *changeBody, error) {
	if len(b) > MaxChangeSize {
		return nil, nil, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrBadChange, len(b), MaxChangeSize)
	}
	var c change
	if err := unmarshal(b, &c); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadChange, err)
	}
	var body changeBody
	if err := unmarshal(c.Signed.Body, &body); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadChange, err)
	}
	if _, _, err := SplitID(body.Space); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadChange, err)
	}
	if body.Op != OpPut && body.Op != OpDelete {
		return nil, nil, fmt.Errorf("%w: unknown op %d", ErrBadChange, body.Op)
	}
	if len(body.Tag) != 64 {
		return nil, nil, fmt.Errorf("%w: malformed tag", ErrBadChange)
	}
	if _, err := hex.DecodeString(body.Tag); err != nil {
		return nil, nil, fmt.Errorf("%w: malformed tag", ErrBadChange)
	}
	if body.Op == OpPut {
		if _, err := cid.Cast(body.Entry); err != nil {
			return nil, nil, fmt.Errorf("%w: entry: %v", ErrBadChange, err)
		}
	}
	if len(body.Nonce) != 16 {
		return nil, nil, fmt.Errorf("%w: nonce of %d bytes, want 16", ErrBadChange, len(body.Nonce))
	}
	if err := verify(c.Signed, changeDomain, body.Writer); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadChange, err)
	}
	return &c, &body, nil
}

// SplitID splits a space ID, OWNER/NAME, into its owner's user ID and
// name.
func SplitID(id string) (peer.ID, string, error) {
	o, name, ok := strings.Cut(id, "/")
	if !ok {
		return "", "", fmt.Errorf("%w: space %q: want OWNER/NAME", ErrBadName, id)
	}
	owner, err := peer.Decode(o)
	if err != nil {
		return "", "", fmt.Errorf("%w: space %q: owner: %v", ErrBadName, id, err)
	}
	if err := checkName(name); err != nil {
		return "", "", err
	}
	return owner, name, nil
}

// MaxNameLen is the longest space name.
const MaxNameLen = 64

// checkName accepts names of letters, digits, '.', '_' and '-', not
// starting with a dot.
func checkName(name string) error {
	if name == "" || len(name) > MaxNameLen || name[0] == '.' {
		return fmt.Errorf("%w: space name %q: want 1 to %d letters, digits, '.', '_' or '-', not starting with '.'", ErrBadName, name, MaxNameLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%w: space name %q: want 1 to %d letters, digits, '.', '_' or '-'", ErrBadName, name, MaxNameLen)
		}
	}
	return nil
}
