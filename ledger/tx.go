package ledger

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/service"
)

// Caps on what a ledger node decodes from others, each checked before
// decoding.
const (
	// MaxTxSize is the largest encoded transaction, receipt included.
	MaxTxSize = 4 << 10
	// MaxMemo is the longest memo a transfer may carry, in bytes.
	MaxMemo = 256
	// Window is how far a transaction's or receipt's time may stray from
	// the ledger's clock; a nonce is remembered until its transaction is
	// Window + MaxSkew old, so a replay is refused either as old or as
	// seen.
	Window = 10 * time.Minute
	// MaxAmount is the most any amount may be, in millicredits: a
	// transfer, a reserve, a receipt, a price, a trust line, the genesis's
	// limit. It is 2^53-1 (about 9 billion credits, far past any real
	// price) because a JSON number is exact up to there in every client
	// (the dashboard's JavaScript included), and because a sum of up to
	// 1024 such amounts cannot wrap an int64 before checked arithmetic
	// even looks at it.
	MaxAmount = 1<<53 - 1
	// MaxReserveTTL is the longest a reserve may last: the longest run (an
	// hour) many times over. A reserve that lasted longer would only keep
	// its payer's credit out of use, and an entry in the ledger's memory.
	MaxReserveTTL = 24 * time.Hour
	// maxTime is the latest time a transaction or receipt may carry (in
	// 2116): so a time plus any window or lifetime never wraps.
	maxTime = 1 << 62
	// maxSpaceRef bounds a storage receipt's space: an owner's ID and a
	// space name, with room to spare.
	maxSpaceRef = 256
)

// Domain separation for everything a key signs here.
const (
	txDomain      = "nube ledger tx v1\n"
	nodeDomain    = "nube ledger tx node v1\n"
	payeeDomain   = "nube ledger receipt payee v1\n"
	payerDomain   = "nube ledger receipt payer v1\n"
	nonceSize     = 16
	millisPerUnit = 1000
)

// Kind says what a transaction does.
type Kind uint8

// The kinds of transaction.
const (
	// Transfer moves Amount from From to To: a payment, or a sale of
	// credit.
	Transfer Kind = iota + 1
	// Reserve moves up to Amount from From into escrow for a run on the
	// node Provider, at Price, until Expires.
	Reserve
	// Settle pays a receipt. A compute receipt is paid from its reserve
	// and settled by its payee, the provider: the payer's signed reserve
	// is its consent, up to the reserve's most at the reserve's price. A
	// storage receipt is paid from the payer's balance and settled by the
	// payer, who countersigns it.
	Settle
	// Release gives a reserve back to its payer; the provider signs it
	// when a run never started.
	Release
	// Vouch sets the trust line from From to To at Amount: credit To may
	// spend below zero, which From answers for with its own (zero
	// withdraws the line).
	Vouch
)

func (k Kind) String() string {
	switch k {
	case Transfer:
		return "transfer"
	case Reserve:
		return "reserve"
	case Settle:
		return "settle"
	case Release:
		return "release"
	case Vouch:
		return "vouch"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Price is what a run costs, in millicredits: the terms a service
// descriptor states.
type Price = service.Price

// StorageCost is what holding bytes for d costs at perGiBDay
// millicredits, rounded up.
func StorageCost(bytes int64, d time.Duration, perGiBDay uint64) int64 {
	if bytes <= 0 || d <= 0 || perGiBDay == 0 {
		return 0
	}
	// GiB-nanoseconds fit a float64's exactness well enough at the
	// scale of one period; the result is rounded up.
	v := float64(bytes) / (1 << 30) * d.Hours() / 24 * float64(perGiBDay)
	if v >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(math.Ceil(v))
}

// Tx is the body of a transaction, the bytes its signer signs.
type Tx struct {
	Kind Kind `cbor:"1,keyasint"`
	// From is the account the transaction debits and whose key signs it
	// (for Release: the payee giving the reserve back; for Vouch: the
	// voucher; for a compute Settle: the payee settling it; for a storage
	// Settle: the payer, who countersigned it).
	From   peer.ID `cbor:"2,keyasint,omitempty"`
	To     peer.ID `cbor:"3,keyasint,omitempty"`
	Amount int64   `cbor:"4,keyasint,omitempty"`
	Memo   string  `cbor:"5,keyasint,omitempty"`
	Nonce  []byte  `cbor:"6,keyasint"`
	Time   int64   `cbor:"7,keyasint"` // unix nanoseconds
	// Reserve: the node that will run the job, its price, and when the
	// reserve returns to From if nobody settled it.
	Provider peer.ID `cbor:"8,keyasint,omitempty"`
	Price    Price   `cbor:"9,keyasint,omitempty"`
	Expires  int64   `cbor:"10,keyasint,omitempty"`
	// Release: the reserve's ID.
	Ref []byte `cbor:"11,keyasint,omitempty"`
	// Settle: the receipt, signed by both sides.
	Receipt *SignedReceipt `cbor:"12,keyasint,omitempty"`
}

// ID returns the transaction's ID: its nonce, in hex. A reserve's ID is
// the ID its receipt names.
func (t *Tx) ID() string { return hex.EncodeToString(t.Nonce) }

// SignedTx is a transaction as it travels: its body, the signature of its
// From key, and for a Release the provider node's cert.
//
// A transaction that acts for a reserve's provider (a Release, a compute
// Settle) also carries NodeSig, the provider node's own signature of the
// body. A user's cert is only that user's word that a node is theirs,
// which anyone can give of any node; the node's signature is the node's
// word, which only the node the reserve names can give.
type SignedTx struct {
	Body    []byte         `cbor:"1,keyasint"`
	Sig     []byte         `cbor:"2,keyasint,omitempty"`
	Cert    *nodecert.Cert `cbor:"3,keyasint,omitempty"`
	NodeSig []byte         `cbor:"4,keyasint,omitempty"`

	tx *Tx
}

// Tx returns the decoded body.
func (s *SignedTx) Tx() *Tx { return s.tx }

// ReceiptKind says what a receipt pays for.
type ReceiptKind uint8

// The kinds of receipt.
const (
	// Compute pays a run from its reserve.
	Compute ReceiptKind = iota + 1
	// Storage pays a holder for keeping a space for a period.
	Storage
)

// Receipt says what a payee did for a payer and what it costs, signed by
// the payee. A compute receipt is settled by the payee, once, within what
// the payer's reserve allows; a storage receipt by the payer, once, after
// it countersigns it.
type Receipt struct {
	Kind ReceiptKind `cbor:"1,keyasint"`
	// ID is the reserve's ID for Compute, a hash of space, node and period
	// for Storage: either way a second receipt for the same work has it.
	ID     []byte  `cbor:"2,keyasint"`
	Payer  peer.ID `cbor:"3,keyasint"`
	Payee  peer.ID `cbor:"4,keyasint"`
	Node   peer.ID `cbor:"5,keyasint"` // the payee's node that did the work
	Amount int64   `cbor:"6,keyasint"`
	Time   int64   `cbor:"7,keyasint"`
	// Compute: the run's metering.
	CPU    int64 `cbor:"8,keyasint,omitempty"` // ns
	Wall   int64 `cbor:"9,keyasint,omitempty"` // ns
	Memory int64 `cbor:"10,keyasint,omitempty"`
	In     int64 `cbor:"11,keyasint,omitempty"`
	Out    int64 `cbor:"12,keyasint,omitempty"`
	// Storage: what was held, from when until when, at what price.
	Space     string `cbor:"13,keyasint,omitempty"`
	Bytes     int64  `cbor:"14,keyasint,omitempty"`
	From      int64  `cbor:"15,keyasint,omitempty"`
	Until     int64  `cbor:"16,keyasint,omitempty"`
	PerGiBDay uint64 `cbor:"17,keyasint,omitempty"`
}

// SignedReceipt is a receipt with its payee's signature (and the cert that
// makes Node the payee's), and for storage, once the payer agrees, the
// payer's.
type SignedReceipt struct {
	Body     []byte        `cbor:"1,keyasint"`
	PayeeSig []byte        `cbor:"2,keyasint"`
	PayerSig []byte        `cbor:"3,keyasint,omitempty"`
	Cert     nodecert.Cert `cbor:"4,keyasint"`

	receipt *Receipt
}

// Receipt returns the decoded body.
func (s *SignedReceipt) Receipt() *Receipt { return s.receipt }

func newNonce() []byte {
	b := make([]byte, nonceSize)
	rand.Read(b)
	return b
}

// Sign signs t with key (the key of t.From, an ed25519 signer), filling in
// a nonce and the time if they are unset. Body and Sig are the
// transaction's envelope (identity.Envelope): its exact bytes and its
// payer's signature over the transaction domain and them.
func Sign(key crypto.Signer, t Tx) (*SignedTx, error) {
	if t.Nonce == nil {
		t.Nonce = newNonce()
	}
	if t.Time == 0 {
		t.Time = time.Now().UnixNano()
	}
	e, err := identity.Seal(key, txDomain, &t)
	if err != nil {
		return nil, err
	}
	return &SignedTx{Body: e.Body, Sig: e.Sig, tx: &t}, nil
}

// SignNode adds the signature of the node whose key is key, the node a
// Release or a compute Settle acts for: the reserve's provider. It fails
// only if key cannot sign, or is no ed25519 key.
func (s *SignedTx) SignNode(key crypto.Signer) error {
	sig, err := identity.Sign(key, nodeDomain, s.Body)
	if err != nil {
		return err
	}
	s.NodeSig = sig
	return nil
}

// Encode returns the transaction's wire form.
func (s *SignedTx) Encode() ([]byte, error) { return wire.Marshal(s) }

// DecodeTx decodes a transaction from the wire and checks its shape and
// signature (not the ledger's state: balances, nonces and reserves are the
// ledger's to judge).
func DecodeTx(b []byte) (*SignedTx, error) { return decodeTx(b, true) }

// decodeTx is DecodeTx, checking the signatures only if sigs is set (a
// ledger node skips them for a transaction it checked at its door).
func decodeTx(b []byte, sigs bool) (*SignedTx, error) {
	if len(b) > MaxTxSize {
		return nil, fmt.Errorf("%w: transaction of %d bytes (at most %d)", ErrTooLarge, len(b), MaxTxSize)
	}
	var s SignedTx
	if err := wire.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: transaction: %v", ErrMalformed, err)
	}
	var t Tx
	if err := wire.Unmarshal(s.Body, &t); err != nil {
		return nil, fmt.Errorf("%w: transaction body: %v", ErrMalformed, err)
	}
	s.tx = &t
	if err := s.checkWith(sigs); err != nil {
		return nil, err
	}
	return &s, nil
}

// check checks the shape of a decoded transaction and its signatures.
func (s *SignedTx) check() error { return s.checkWith(true) }

// checkWith checks the shape, and the signatures if sigs is set. Every
// field is checked against its cap before anything uses it; an account
// (From, To, Provider) must be a user or node ID that is an ed25519 key,
// so nobody can pay into an account that no key can spend from.
func (s *SignedTx) checkWith(sigs bool) error {
	t := s.tx
	switch {
	case len(t.Nonce) != nonceSize:
		return fmt.Errorf("%w: nonce of %d bytes (want %d)", ErrMalformed, len(t.Nonce), nonceSize)
	case t.Time <= 0 || t.Time > maxTime:
		return fmt.Errorf("%w: time %d (want 1 to %d)", ErrMalformed, t.Time, int64(maxTime))
	case len(t.Memo) > MaxMemo:
		return fmt.Errorf("%w: memo of %d bytes (at most %d)", ErrMalformed, len(t.Memo), MaxMemo)
	case len(t.Ref) != 0 && len(t.Ref) != nonceSize:
		return fmt.Errorf("%w: reference of %d bytes (want %d)", ErrMalformed, len(t.Ref), nonceSize)
	case t.Amount < 0 || t.Amount > MaxAmount:
		return fmt.Errorf("%w: amount %d (want 0 to %d)", ErrMalformed, t.Amount, int64(MaxAmount))
	case t.Price.PerCall > MaxAmount || t.Price.PerCPUSecond > MaxAmount:
		return fmt.Errorf("%w: price of %d per call and %d per CPU second (at most %d each)", ErrMalformed,
			t.Price.PerCall, t.Price.PerCPUSecond, int64(MaxAmount))
	case t.Expires < 0 || t.Expires > maxTime:
		return fmt.Errorf("%w: expiry %d (want 0 to %d)", ErrMalformed, t.Expires, int64(maxTime))
	}
	if err := validID(t.From); err != nil {
		return fmt.Errorf("%w: the account to debit: %v", ErrMalformed, err)
	}
	switch t.Kind {
	case Transfer, Vouch:
		if err := validID(t.To); err != nil {
			return fmt.Errorf("%w: the %s's payee: %v", ErrMalformed, t.Kind, err)
		}
		if t.To == t.From {
			return fmt.Errorf("%w: a %s needs a payee other than its payer", ErrMalformed, t.Kind)
		}
		if t.Kind == Transfer && t.Amount == 0 {
			return fmt.Errorf("%w: amount 0 (must be positive)", ErrMalformed)
		}
	case Reserve:
		if err := validID(t.Provider); err != nil {
			return fmt.Errorf("%w: a reserve needs a provider node: %v", ErrMalformed, err)
		}
		if t.Expires <= t.Time || t.Expires-t.Time > int64(MaxReserveTTL) {
			return fmt.Errorf("%w: a reserve needs an expiry after its time, within %v", ErrMalformed, MaxReserveTTL)
		}
		if t.Amount == 0 {
			return fmt.Errorf("%w: reserve of 0 (must be positive)", ErrMalformed)
		}
	case Release:
		if len(t.Ref) != nonceSize {
			return fmt.Errorf("%w: a release names no reserve", ErrMalformed)
		}
		if err := validID(t.Provider); err != nil {
			return fmt.Errorf("%w: a release needs the provider node: %v", ErrMalformed, err)
		}
		if s.Cert == nil {
			return fmt.Errorf("%w: a release carries no node cert", ErrMalformed)
		}
		if s.Cert.User != t.From {
			return fmt.Errorf("%w: the release's cert is of %s, not of its signer %s", ErrForged, s.Cert.User, t.From)
		}
		if sigs {
			if err := s.Cert.Check(t.Provider); err != nil {
				return fmt.Errorf("%w: %v", ErrForged, err)
			}
			if err := s.checkNode(t.Provider); err != nil {
				return err
			}
		}
	case Settle:
		if err := s.checkSettle(sigs); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: unknown kind %d", ErrMalformed, t.Kind)
	}
	if !sigs {
		return nil
	}
	if err := identity.Verify(t.From, txDomain, s.Body, s.Sig); err != nil {
		return fmt.Errorf("%w: %s transaction: %v", ErrForged, t.Kind, err)
	}
	return nil
}

// checkSettle checks a settlement's receipt and who settles it: the payee
// for a compute receipt (with its node's signature: the node the reserve
// names, as the ledger checks), the payer for a storage one, which it
// countersigned.
func (s *SignedTx) checkSettle(sigs bool) error {
	t := s.tx
	if t.Receipt == nil {
		return fmt.Errorf("%w: a settlement carries no receipt", ErrMalformed)
	}
	if err := t.Receipt.decode(); err != nil {
		return err
	}
	r := t.Receipt.receipt
	if err := t.Receipt.verifyWith(r.Kind == Storage, sigs); err != nil {
		return err
	}
	switch {
	case r.Kind == Compute && t.From != r.Payee:
		return fmt.Errorf("%w: a compute receipt is settled by its payee %s, not by %s", ErrForged, r.Payee, t.From)
	case r.Kind == Storage && t.From != r.Payer:
		return fmt.Errorf("%w: a storage receipt is settled by its payer %s, not by %s", ErrForged, r.Payer, t.From)
	case r.Kind == Compute && sigs:
		return s.checkNode(r.Node)
	}
	return nil
}

// validID checks that id is the canonical ID of an ed25519 key, as every
// user and node ID is: the identity multihash of the key's protobuf, 38
// bytes. It checks the bytes, not that the key is a point on the curve (a
// signature check does that); a key nobody holds cannot be told from one
// somebody does, but an account can no longer be any 4 KiB string.
func validID(id peer.ID) error {
	if len(id) != len(ed25519IDPrefix)+ed25519.PublicKeySize || string(id[:len(ed25519IDPrefix)]) != ed25519IDPrefix {
		return fmt.Errorf("%d bytes that are no user or node ID (an ed25519 key's)", len(id))
	}
	return nil
}

// checkNode checks that node signed the transaction.
func (s *SignedTx) checkNode(node peer.ID) error {
	if err := identity.Verify(node, nodeDomain, s.Body, s.NodeSig); err != nil {
		return fmt.Errorf("%w: %s transaction, node: %v", ErrForged, s.tx.Kind, err)
	}
	return nil
}

// ed25519IDPrefix begins every ed25519 peer ID: the identity multihash
// (0x00) of 36 bytes (0x24), a protobuf PublicKey of type Ed25519 (0x08
// 0x01) with 32 bytes of data (0x12 0x20).
const ed25519IDPrefix = "\x00\x24\x08\x01\x12\x20"

// NewReceipt makes a receipt signed by its payee (key, whose node cert is
// cert). The payer of a storage receipt signs it with Countersign.
func NewReceipt(key crypto.Signer, cert nodecert.Cert, r Receipt) (*SignedReceipt, error) {
	if r.Time == 0 {
		r.Time = time.Now().UnixNano()
	}
	e, err := identity.Seal(key, payeeDomain, &r)
	if err != nil {
		return nil, err
	}
	return &SignedReceipt{Body: e.Body, PayeeSig: e.Sig, Cert: cert, receipt: &r}, nil
}

// Countersign adds the payer's signature: key must be the payer's. Only
// storage receipts need it: a compute receipt's payer agreed in its
// reserve. It fails only if key cannot sign, or is no ed25519 key.
func (s *SignedReceipt) Countersign(key crypto.Signer) error {
	sig, err := identity.Sign(key, payerDomain, s.Body)
	if err != nil {
		return err
	}
	s.PayerSig = sig
	return nil
}

// Encode returns the receipt's wire form.
func (s *SignedReceipt) Encode() ([]byte, error) { return wire.Marshal(s) }

// DecodeReceipt decodes a receipt and checks its shape and the payee's
// signature; if countersigned is set, the payer's too.
func DecodeReceipt(b []byte, countersigned bool) (*SignedReceipt, error) {
	return decodeReceipt(b, countersigned, true)
}

// decodeReceipt is DecodeReceipt, checking the signatures only if sigs is
// set (a payer prices a receipt first and checks it off its path).
func decodeReceipt(b []byte, countersigned, sigs bool) (*SignedReceipt, error) {
	if len(b) > MaxTxSize {
		return nil, fmt.Errorf("%w: receipt of %d bytes (at most %d)", ErrTooLarge, len(b), MaxTxSize)
	}
	var s SignedReceipt
	if err := wire.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: receipt: %v", ErrMalformed, err)
	}
	if err := s.decode(); err != nil {
		return nil, err
	}
	if err := s.verifyWith(countersigned, sigs); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *SignedReceipt) decode() error {
	var r Receipt
	if err := wire.Unmarshal(s.Body, &r); err != nil {
		return fmt.Errorf("%w: receipt body: %v", ErrMalformed, err)
	}
	s.receipt = &r
	return nil
}

// verifyWith checks the receipt's shape, every field against its cap,
// and its signatures if sigs is set.
func (s *SignedReceipt) verifyWith(countersigned, sigs bool) error {
	r := s.receipt
	switch {
	case r.Kind != Compute && r.Kind != Storage:
		return fmt.Errorf("%w: receipt of unknown kind %d", ErrMalformed, r.Kind)
	case len(r.ID) != nonceSize:
		return fmt.Errorf("%w: receipt ID of %d bytes (want %d)", ErrMalformed, len(r.ID), nonceSize)
	case r.Payer == "" || r.Payee == "" || r.Node == "":
		return fmt.Errorf("%w: receipt lacks its payer, payee or node", ErrMalformed)
	case r.Amount < 0 || r.CPU < 0 || r.Wall < 0 || r.Bytes < 0 || r.Memory < 0 || r.In < 0 || r.Out < 0:
		return fmt.Errorf("%w: negative figures in a receipt", ErrMalformed)
	case r.Amount > MaxAmount || r.PerGiBDay > MaxAmount:
		return fmt.Errorf("%w: a receipt of %d at %d per GiB-day (at most %d each)", ErrMalformed, r.Amount, r.PerGiBDay, int64(MaxAmount))
	case r.CPU > maxTime || r.Wall > maxTime || r.From < 0 || r.From > maxTime || r.Until > maxTime:
		return fmt.Errorf("%w: receipt times past %d", ErrMalformed, int64(maxTime))
	case len(r.Space) > maxSpaceRef:
		return fmt.Errorf("%w: receipt for a space of %d bytes (at most %d)", ErrMalformed, len(r.Space), maxSpaceRef)
	case r.Time <= 0 || r.Time > maxTime:
		return fmt.Errorf("%w: receipt has no time, or one past %d", ErrMalformed, int64(maxTime))
	case r.Kind == Storage && (r.Until <= r.From || r.Space == ""):
		return fmt.Errorf("%w: storage receipt without a space or a period", ErrMalformed)
	case s.Cert.User != r.Payee:
		return fmt.Errorf("%w: the receipt's node cert is of %s, not of its payee %s", ErrForged, s.Cert.User, r.Payee)
	}
	for _, id := range []peer.ID{r.Payer, r.Payee, r.Node} {
		if err := validID(id); err != nil {
			return fmt.Errorf("%w: receipt: %v", ErrMalformed, err)
		}
	}
	if !sigs {
		return nil
	}
	if err := s.Cert.Check(r.Node); err != nil {
		return fmt.Errorf("%w: receipt: %v", ErrForged, err)
	}
	if err := identity.Verify(r.Payee, payeeDomain, s.Body, s.PayeeSig); err != nil {
		return fmt.Errorf("%w: receipt, payee: %v", ErrForged, err)
	}
	if countersigned {
		if err := identity.Verify(r.Payer, payerDomain, s.Body, s.PayerSig); err != nil {
			return fmt.Errorf("%w: receipt, payer: %v", ErrForged, err)
		}
	}
	return nil
}

// Credits formats an amount of millicredits as credits: "12.345".
func Credits(milli int64) string {
	sign := ""
	u := uint64(milli)
	if milli < 0 {
		sign, u = "-", uint64(-milli)
	}
	return fmt.Sprintf("%s%d.%03d", sign, u/millisPerUnit, u%millisPerUnit)
}

// ParseCredits parses an amount of credits ("12", "12.5", "0.001") into
// millicredits.
func ParseCredits(s string) (int64, error) {
	var whole, frac int64
	var fracDigits, digits int
	seenDot := false
	if s == "" {
		return 0, fmt.Errorf("%w: empty amount", ErrMalformed)
	}
	for _, c := range s {
		if c >= '0' && c <= '9' {
			digits++
		}
	}
	if digits == 0 {
		return 0, fmt.Errorf("%w: amount %q has no digits: want credits such as 12 or 0.5", ErrMalformed, s)
	}
	for _, c := range s {
		switch {
		case c == '.' && !seenDot:
			seenDot = true
		case c >= '0' && c <= '9' && !seenDot:
			whole = whole*10 + int64(c-'0')
			if whole > math.MaxInt64/millisPerUnit/10 {
				return 0, fmt.Errorf("%w: amount %q is too large", ErrMalformed, s)
			}
		case c >= '0' && c <= '9' && fracDigits < 3:
			frac = frac*10 + int64(c-'0')
			fracDigits++
		default:
			return 0, fmt.Errorf("%w: amount %q: want credits such as 12 or 0.5, with at most 3 decimals", ErrMalformed, s)
		}
	}
	for ; fracDigits < 3; fracDigits++ {
		frac *= 10
	}
	return whole*millisPerUnit + frac, nil
}
