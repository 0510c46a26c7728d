package service

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/wasm"
)

// MaxDescriptorSize caps an encoded descriptor.
const MaxDescriptorSize = 64 << 10

// MaxStages caps the stages of a pipeline, nested pipelines included.
const MaxStages = 16

// Caps on descriptor fields.
const (
	maxName        = 64
	maxVersion     = 32
	maxDescription = 4 << 10
	maxFormat      = 128
	maxTimeout     = time.Hour
)

// signContext is prefixed to a descriptor's body before signing, so that a
// descriptor signature can never pass for a signature on anything else.
const signContext = "nube service descriptor v1\x00"

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// Price is what a service asks for its runs, in millicredits.
type Price struct {
	PerCall      uint64 `json:"per_call,omitempty"`
	PerCPUSecond uint64 `json:"per_cpu_second,omitempty"`
}

// Descriptor describes a service. Fill in the public fields and Publish
// it (which signs it); Parse decodes and verifies one from its bytes.
type Descriptor struct {
	// Name names the service: lower-case letters, digits, '.', '_' and
	// '-', at most 64 bytes, starting with a letter or digit.
	Name string
	// Version is the publisher's version label, such as "1.2.0".
	Version string
	// Description says what the service does, in words that `nube
	// service ls` searches.
	Description string
	// Module is the CID of the WebAssembly module. A pipeline has none.
	Module cid.Cid
	// Stages are the CIDs of the descriptors a pipeline runs in order,
	// each stage's output being the next one's input.
	Stages []cid.Cid
	// Input and Output are the media types the service reads and writes,
	// such as "text/plain". Empty means any bytes.
	Input, Output string
	// Limits are the limits the service asks for; a node gives at most
	// its own maximum, and the defaults where these are zero.
	Limits wasm.Limits
	// Price is what the publisher asks per run.
	Price Price
	// Wants are the rights the module needs from its caller:
	// "space:read", "space:write", "call:NAME". A call that grants less
	// is refused before anything runs, saying what is missing.
	Wants []string
	// Deterministic says the module's output depends on its input, the
	// content it reads and the seed its caller gives, and nothing else:
	// it sees a fixed clock and seeded randomness, and may not read a
	// space. Only such a service can be checked by re-running it
	// (Pipeline.Verify).
	Deterministic bool
	// Publisher is the ID of the user key that signed the descriptor.
	// Publish sets it.
	Publisher peer.ID
	// Created is when the descriptor was signed. Publish sets it.
	Created time.Time

	raw []byte  // the signed encoding
	id  cid.Cid // the CID of raw
}

// ID returns the descriptor's CID, the CID of its signed encoding.
func (d *Descriptor) ID() cid.Cid { return d.id }

// Bytes returns the descriptor's signed encoding.
func (d *Descriptor) Bytes() []byte { return d.raw }

// IsPipeline reports whether the descriptor names stages, not a module.
func (d *Descriptor) IsPipeline() bool { return len(d.Stages) > 0 }

// Label returns "name@version" (or the name alone).
func (d *Descriptor) Label() string {
	if d.Version == "" {
		return d.Name
	}
	return d.Name + "@" + d.Version
}

type limitsWire struct {
	Memory    int64 `cbor:"1,keyasint,omitempty"`
	TimeoutMS int64 `cbor:"2,keyasint,omitempty"`
	MaxInput  int64 `cbor:"3,keyasint,omitempty"`
	MaxOutput int64 `cbor:"4,keyasint,omitempty"`
}

func limitsToWire(l wasm.Limits) *limitsWire {
	if l == (wasm.Limits{}) {
		return nil
	}
	return &limitsWire{Memory: l.Memory, TimeoutMS: l.Timeout.Milliseconds(), MaxInput: l.MaxInput, MaxOutput: l.MaxOutput}
}

func (w *limitsWire) limits() (wasm.Limits, error) {
	if w == nil {
		return wasm.Limits{}, nil
	}
	if w.Memory < 0 || w.TimeoutMS < 0 || w.MaxInput < 0 || w.MaxOutput < 0 {
		return wasm.Limits{}, errors.New("a limit is negative")
	}
	if w.TimeoutMS > maxTimeout.Milliseconds() {
		return wasm.Limits{}, fmt.Errorf("timeout %d ms is over %v", w.TimeoutMS, maxTimeout)
	}
	return wasm.Limits{Memory: w.Memory, Timeout: time.Duration(w.TimeoutMS) * time.Millisecond, MaxInput: w.MaxInput, MaxOutput: w.MaxOutput}, nil
}

// body is the signed part of a descriptor on the wire.
type body struct {
	Name         string      `cbor:"1,keyasint"`
	Version      string      `cbor:"2,keyasint,omitempty"`
	Description  string      `cbor:"3,keyasint,omitempty"`
	Module       []byte      `cbor:"4,keyasint,omitempty"`
	Stages       [][]byte    `cbor:"5,keyasint,omitempty"`
	Input        string      `cbor:"6,keyasint,omitempty"`
	Output       string      `cbor:"7,keyasint,omitempty"`
	Limits       *limitsWire `cbor:"8,keyasint,omitempty"`
	PerCall      uint64      `cbor:"9,keyasint,omitempty"`
	PerCPUSecond uint64      `cbor:"10,keyasint,omitempty"`
	Publisher    []byte      `cbor:"11,keyasint"`
	Created      int64       `cbor:"12,keyasint"`
	Wants        []string    `cbor:"13,keyasint,omitempty"`
	Det          bool        `cbor:"14,keyasint,omitempty"`
}

// Signer returns the publisher, who must have signed the body.
func (b *body) Signer() (peer.ID, error) {
	if len(b.Publisher) != ed25519.PublicKeySize {
		return "", fmt.Errorf("%w: publisher key is %d bytes, want %d", ErrBadDescriptor, len(b.Publisher), ed25519.PublicKeySize)
	}
	id, err := identity.ID(ed25519.PublicKey(b.Publisher))
	if err != nil {
		return "", fmt.Errorf("%w: publisher key: %v", ErrBadDescriptor, err)
	}
	return id, nil
}

// sign checks d, signs it with key (setting Publisher and Created) and
// fills in its encoding and CID. On the wire a descriptor is an
// identity.Envelope: the body's exact bytes and the publisher's signature
// on them.
func (d *Descriptor) sign(key crypto.Signer, now time.Time) error {
	id, err := identity.SignerID(key)
	if err != nil {
		return err
	}
	pub := key.Public().(ed25519.PublicKey) // SignerID checked it
	d.Publisher = id
	d.Created = now.UTC().Truncate(time.Second)
	if err := d.check(); err != nil {
		return err
	}
	b := body{
		Name: d.Name, Version: d.Version, Description: d.Description,
		Input: d.Input, Output: d.Output, Limits: limitsToWire(d.Limits),
		PerCall: d.Price.PerCall, PerCPUSecond: d.Price.PerCPUSecond,
		Publisher: pub, Created: d.Created.Unix(),
		Wants: d.Wants, Det: d.Deterministic,
	}
	if d.Module.Defined() {
		b.Module = d.Module.Bytes()
	}
	for _, s := range d.Stages {
		b.Stages = append(b.Stages, s.Bytes())
	}
	e, err := identity.Seal(key, signContext, &b)
	if err != nil {
		return err
	}
	env, err := wire.Marshal(e)
	if err != nil {
		return err
	}
	if len(env) > MaxDescriptorSize {
		return fmt.Errorf("%w: %d bytes encoded, the limit is %d", ErrBadDescriptor, len(env), MaxDescriptorSize)
	}
	return d.seal(env)
}

func (d *Descriptor) seal(raw []byte) error {
	id, err := content.FileCID(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	d.raw, d.id = raw, id
	return nil
}

// Parse decodes a signed descriptor and verifies it: its size, its
// fields, and its signature against the publisher key it carries. Errors
// wrap ErrBadDescriptor or ErrBadSignature.
func Parse(data []byte) (*Descriptor, error) {
	if len(data) > MaxDescriptorSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadDescriptor, len(data), MaxDescriptorSize)
	}
	var env identity.Envelope
	if err := wire.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDescriptor, err)
	}
	var b body
	publisher, err := env.Open(signContext, &b)
	switch {
	case errors.Is(err, identity.ErrBadSignature):
		return nil, ErrBadSignature
	case errors.Is(err, ErrBadDescriptor):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrBadDescriptor, err)
	}
	d := &Descriptor{
		Name: b.Name, Version: b.Version, Description: b.Description,
		Input: b.Input, Output: b.Output,
		Price:     Price{PerCall: b.PerCall, PerCPUSecond: b.PerCPUSecond},
		Created:   time.Unix(b.Created, 0).UTC(),
		Publisher: publisher,
		Wants:     b.Wants, Deterministic: b.Det,
	}
	if d.Limits, err = b.Limits.limits(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDescriptor, err)
	}
	if len(b.Module) > 0 {
		if d.Module, err = cid.Cast(b.Module); err != nil {
			return nil, fmt.Errorf("%w: module CID: %v", ErrBadDescriptor, err)
		}
	}
	if len(b.Stages) > MaxStages {
		return nil, fmt.Errorf("%w: %d stages, the limit is %d", ErrBadDescriptor, len(b.Stages), MaxStages)
	}
	for i, s := range b.Stages {
		c, err := cid.Cast(s)
		if err != nil {
			return nil, fmt.Errorf("%w: stage %d CID: %v", ErrBadDescriptor, i+1, err)
		}
		d.Stages = append(d.Stages, c)
	}
	if err := d.check(); err != nil {
		return nil, err
	}
	if err := d.seal(data); err != nil {
		return nil, err
	}
	return d, nil
}

// check applies the rules every descriptor must follow.
func (d *Descriptor) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadDescriptor, fmt.Sprintf(format, args...))
	}
	if err := CheckName(d.Name); err != nil {
		return err
	}
	for _, f := range []struct {
		what, s string
		max     int
	}{
		{"version", d.Version, maxVersion},
		{"description", d.Description, maxDescription},
		{"input format", d.Input, maxFormat},
		{"output format", d.Output, maxFormat},
	} {
		if len(f.s) > f.max {
			return bad("%s is %d bytes, the limit is %d", f.what, len(f.s), f.max)
		}
		if !utf8.ValidString(f.s) {
			return bad("%s is not valid UTF-8", f.what)
		}
	}
	if bytes.ContainsAny([]byte(d.Version), " \t\r\n|@") {
		return bad("version %q holds a space, '|' or '@'", d.Version)
	}
	switch {
	case d.Module.Defined() && len(d.Stages) > 0:
		return bad("it names both a module and stages")
	case !d.Module.Defined() && len(d.Stages) == 0:
		return bad("it names neither a module nor stages")
	case len(d.Stages) > MaxStages:
		return bad("%d stages, the limit is %d", len(d.Stages), MaxStages)
	}
	if len(d.Wants) > maxAllows {
		return bad("%d wants, the limit is %d", len(d.Wants), maxAllows)
	}
	for _, w := range d.Wants {
		if err := checkWant(w); err != nil {
			return err
		}
	}
	l := d.Limits
	if l.Memory < 0 || l.Timeout < 0 || l.MaxInput < 0 || l.MaxOutput < 0 || l.Timeout > maxTimeout {
		return bad("limits %+v are out of range", l)
	}
	return nil
}

// CheckName reports whether name can name a service.
func CheckName(name string) error {
	if name == "" || len(name) > maxName || !nameRE.MatchString(name) {
		return fmt.Errorf("%w: name %q: use 1 to %d lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", ErrBadDescriptor, name, maxName)
	}
	return nil
}

// NameKey is the DHT key under which nodes announce that they know a
// service called name.
func NameKey(name string) cid.Cid {
	sum := sha256.Sum256([]byte("nube service name\x00" + name))
	h, _ := mh.Encode(sum[:], mh.SHA2_256)
	return cid.NewCidV1(cid.Raw, h)
}
