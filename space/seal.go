package space

import (
	"bufio"
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"

	"filippo.io/edwards25519"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/nubecloud/nube/internal/identity"
)

// The cryptography of a space, all of it from vetted parts:
//
//   - values are sealed in 64 KiB segments with XChaCha20-Poly1305, the
//     nonce of each segment a random prefix of the value, the segment's
//     index and a last-segment flag (the STREAM layout age uses), so that
//     segments cannot be reordered, dropped or the value cut short;
//   - small records (an entry's metadata, a key name in a change) are
//     sealed with XChaCha20-Poly1305 under a random nonce, bound to the
//     space and the key's tag as associated data;
//   - key names become tags with HMAC-SHA256, so a holder learns no name;
//   - the space's keys reach each reader wrapped with HPKE (RFC 9180,
//     X25519, HKDF-SHA256, ChaCha20-Poly1305) to the X25519 form of the
//     reader's ed25519 user key, as age and libsodium convert it, so that a
//     grant needs nothing but the reader's user ID.

const (
	// segmentSize is the plaintext of one sealed segment of a value.
	segmentSize = 64 << 10
	// segmentOverhead is what sealing adds to each segment.
	segmentOverhead = chacha20poly1305.Overhead
	// valueMagic starts every sealed value, with the version of its layout.
	valueMagic = "nsv1"
	// valueHeader is the magic and the nonce prefix.
	valueHeader = len(valueMagic) + 16
	keySize     = chacha20poly1305.KeySize
)

// keyring is what a reader of a space holds: the index key, fixed for the
// life of the space, and the data key of every epoch so far (index =
// epoch). A revocation starts a new epoch, whose key revoked readers never
// get.
type keyring struct {
	Index []byte   `cbor:"1,keyasint"`
	Data  [][]byte `cbor:"2,keyasint"`
}

func newKeyring() keyring {
	return keyring{Index: randomBytes(keySize), Data: [][]byte{randomBytes(keySize)}}
}

// rotate starts a new epoch and returns it.
func (k *keyring) rotate() uint64 {
	k.Data = append(k.Data, randomBytes(keySize))
	return uint64(len(k.Data) - 1)
}

// clone returns a copy of k that rotates without changing k.
func (k keyring) clone() keyring {
	return keyring{Index: k.Index, Data: slices.Clone(k.Data)}
}

func (k keyring) epoch() uint64 { return uint64(len(k.Data) - 1) }

// data returns the key of epoch e.
func (k keyring) data(e uint64) ([]byte, error) {
	if e >= uint64(len(k.Data)) {
		return nil, fmt.Errorf("%w: no key for epoch %d (this reader has %d)", ErrNotAuthorised, e, len(k.Data))
	}
	return k.Data[e], nil
}

func (k keyring) valid() error {
	if len(k.Index) != keySize || len(k.Data) == 0 {
		return errors.New("malformed keyring")
	}
	for _, d := range k.Data {
		if len(d) != keySize {
			return errors.New("malformed keyring")
		}
	}
	return nil
}

// tag is the name a key goes by in the space's tree: an HMAC of the key
// under the index key, in hex.
func (k keyring) tag(key string) string {
	m := hmac.New(sha256.New, k.Index)
	m.Write([]byte(key))
	return hex.EncodeToString(m.Sum(nil))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// sealSmall seals plaintext under key with a random nonce, bound to ad.
// The result is the nonce followed by the ciphertext.
func sealSmall(key, ad, plaintext []byte) []byte {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		panic(err) // key is always keySize: a bug, not input
	}
	nonce := randomBytes(a.NonceSize())
	return a.Seal(nonce, nonce, plaintext, ad)
}

// openSmall opens what sealSmall sealed.
func openSmall(key, ad, box []byte) ([]byte, error) {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	if len(box) < a.NonceSize()+a.Overhead() {
		return nil, ErrDecrypt
	}
	out, err := a.Open(nil, box[:a.NonceSize()], box[a.NonceSize():], ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

// sealedSize returns the size of n bytes of plaintext once sealed.
func sealedSize(n uint64) uint64 {
	segs := n/segmentSize + 1
	if n > 0 && n%segmentSize == 0 {
		segs = n / segmentSize
	}
	return uint64(valueHeader) + n + segs*segmentOverhead
}

// segmentNonce is the prefix, the segment's index (7 bytes) and the last
// flag.
func segmentNonce(prefix []byte, i uint64, last bool) []byte {
	n := make([]byte, chacha20poly1305.NonceSizeX)
	copy(n, prefix)
	var ctr [8]byte
	binary.BigEndian.PutUint64(ctr[:], i)
	copy(n[16:23], ctr[1:])
	if last {
		n[23] = 1
	}
	return n
}

// storedSize is the size of a value of n bytes as the space stores it:
// sealed, or as it is in a public space.
func storedSize(n uint64, public bool) uint64 {
	if public {
		return n
	}
	return sealedSize(n)
}

// plain reads a public space's value from r as it is, counting its bytes
// and stopping with ErrTooLarge past max, as a sealer does.
type plain struct {
	r      io.Reader
	n, max uint64
}

func (p *plain) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += uint64(n)
	if p.n > p.max {
		return n, fmt.Errorf("%w: value over the limit of %d bytes", ErrTooLarge, p.max)
	}
	return n, err
}

// sealer reads plaintext from r and yields the sealed value: the header,
// then each segment sealed. It stops with ErrTooLarge past max bytes of
// plaintext.
type sealer struct {
	r    *bufio.Reader
	aead interface {
		Seal(dst, nonce, plaintext, ad []byte) []byte
	}
	prefix []byte
	i      uint64
	done   bool
	out    []byte // sealed bytes not yet read
	buf    []byte
	n, max uint64
}

func newSealer(key []byte, r io.Reader, max uint64) *sealer {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		panic(err) // key is always keySize
	}
	s := &sealer{r: bufio.NewReaderSize(r, segmentSize), aead: a, prefix: randomBytes(16), max: max,
		buf: make([]byte, segmentSize)}
	s.out = append([]byte(valueMagic), s.prefix...)
	return s
}

func (s *sealer) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		if s.done {
			return 0, io.EOF
		}
		if err := s.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// next seals the next segment. A segment is the last when nothing follows
// it, which a peek at the reader tells.
func (s *sealer) next() error {
	n, err := io.ReadFull(s.r, s.buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return err
	}
	last := n < segmentSize
	if !last {
		if _, perr := s.r.Peek(1); perr == io.EOF {
			last = true
		} else if perr != nil {
			return perr
		}
	}
	s.n += uint64(n)
	if s.n > s.max {
		return fmt.Errorf("%w: value over the limit of %d bytes", ErrTooLarge, s.max)
	}
	s.out = s.aead.Seal(s.out[:0], segmentNonce(s.prefix, s.i, last), s.buf[:n], nil)
	s.i++
	s.done = last
	return nil
}

// opener reads a sealed value from r and yields its plaintext, failing
// with ErrDecrypt on any segment that does not open, including a value cut
// short at a segment boundary (its last segment lacks the last flag).
type opener struct {
	r    *bufio.Reader
	aead interface {
		Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
	}
	prefix []byte
	i      uint64
	done   bool
	out    []byte
	buf    []byte
	plain  []byte
}

// newOpener opens the sealed value r; size, the plaintext's length if
// known (else any larger number), only sizes its buffers, so that a small
// value costs little memory.
func newOpener(key []byte, r io.Reader, size uint64) (*opener, error) {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	seg := segmentSize
	if size < segmentSize {
		seg = int(size) + 1
	}
	br := bufio.NewReaderSize(r, seg+segmentOverhead)
	hdr := make([]byte, valueHeader)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrDecrypt, err)
	}
	if string(hdr[:len(valueMagic)]) != valueMagic {
		return nil, fmt.Errorf("%w: not a sealed value", ErrDecrypt)
	}
	return &opener{r: br, aead: a, prefix: hdr[len(valueMagic):], buf: make([]byte, seg+segmentOverhead),
		plain: make([]byte, 0, seg)}, nil
}

func (o *opener) Read(p []byte) (int, error) {
	for len(o.out) == 0 {
		if o.done {
			return 0, io.EOF
		}
		if err := o.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, o.out)
	o.out = o.out[n:]
	return n, nil
}

func (o *opener) next() error {
	n, err := io.ReadFull(o.r, o.buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return err
	}
	if n == len(o.buf) && n < segmentSize+segmentOverhead {
		// More than the size given: the value is not what its entry says.
		return fmt.Errorf("%w: value longer than its entry says", ErrDecrypt)
	}
	last := n < len(o.buf)
	if !last {
		if _, perr := o.r.Peek(1); perr == io.EOF {
			last = true
		} else if perr != nil {
			return perr
		}
	}
	out, err := o.aead.Open(o.plain[:0], segmentNonce(o.prefix, o.i, last), o.buf[:n], nil)
	if err != nil {
		return fmt.Errorf("%w: segment %d", ErrDecrypt, o.i)
	}
	o.out = out
	o.i++
	o.done = last
	return nil
}

// x25519Public converts an ed25519 public key to its X25519 (Montgomery)
// form.
func x25519Public(pub ed25519.PublicKey) (*ecdh.PublicKey, error) {
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, fmt.Errorf("ed25519 key: %w", err)
	}
	return ecdh.X25519().NewPublicKey(p.BytesMontgomery())
}

// x25519Private converts an ed25519 private key to the X25519 key that
// matches x25519Public of its public half (RFC 8032's scalar: the first
// half of SHA-512 of the seed; X25519 clamps it).
func x25519Private(key ed25519.PrivateKey) (*ecdh.PrivateKey, error) {
	h := sha512.Sum512(key.Seed())
	return ecdh.X25519().NewPrivateKey(h[:32])
}

// keyExchanger returns the X25519 key that opens keyrings wrapped for the
// holder of key. An ed25519.PrivateKey converts; a key held elsewhere (a
// hardware key) must do the X25519 exchange itself: it is then also an
// ecdh.KeyExchanger, whose public key must be the X25519 form of its
// ed25519 one, as wrapKeys seals to.
func keyExchanger(key crypto.Signer) (ecdh.KeyExchanger, error) {
	if k, ok := key.(ed25519.PrivateKey); ok {
		return x25519Private(k)
	}
	kx, ok := key.(ecdh.KeyExchanger)
	if !ok || kx.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("the user key is a %T: it cannot open space keys (want an ed25519.PrivateKey, or a signer that is also an X25519 ecdh.KeyExchanger)", key)
	}
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("the user key's public key is a %T, not an ed25519 key", key.Public())
	}
	want, err := x25519Public(pub)
	if err != nil {
		return nil, err
	}
	if !kx.PublicKey().Equal(want) {
		return nil, errors.New("the user key's X25519 key is not the X25519 form of its ed25519 key")
	}
	return kx, nil
}

// userPublic returns the ed25519 key of a user ID.
func userPublic(id peer.ID) (ed25519.PublicKey, error) {
	pub, err := identity.PublicKey(id)
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", id, err)
	}
	return pub, nil
}

func wrapInfo(space string) []byte { return []byte("nube space keys v1 " + space) }

// wrapKeys seals the keyring to user with HPKE, bound to the space.
func wrapKeys(space string, user peer.ID, k keyring) ([]byte, error) {
	return wrapKeysInfo(wrapInfo(space), user, k)
}

// wrapKeysInfo seals the keyring to the ed25519 key of to (a user or a
// node) with HPKE under info, which says what the box is for: a box
// sealed under one info does not open under another.
func wrapKeysInfo(info []byte, to peer.ID, k keyring) ([]byte, error) {
	pub, err := userPublic(to)
	if err != nil {
		return nil, err
	}
	x, err := x25519Public(pub)
	if err != nil {
		return nil, err
	}
	pk, err := hpke.NewDHKEMPublicKey(x)
	if err != nil {
		return nil, err
	}
	pt, err := marshal(k)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	return hpke.Seal(pk, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), info, pt)
}

// unwrapKeys opens a keyring wrapped for the holder of key.
func unwrapKeys(space string, key crypto.Signer, box []byte) (keyring, error) {
	return unwrapKeysInfo(wrapInfo(space), key, box)
}

// unwrapKeysInfo opens a keyring wrapKeysInfo sealed under info for the
// holder of key.
func unwrapKeysInfo(info []byte, key crypto.Signer, box []byte) (keyring, error) {
	var k keyring
	x, err := keyExchanger(key)
	if err != nil {
		return k, err
	}
	sk, err := hpke.NewDHKEMPrivateKey(x)
	if err != nil {
		return k, err
	}
	pt, err := hpke.Open(sk, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), info, box)
	if err != nil {
		return k, fmt.Errorf("%w: space keys", ErrDecrypt)
	}
	defer clear(pt)
	if err := unmarshal(pt, &k); err != nil {
		return k, err
	}
	return k, k.valid()
}
