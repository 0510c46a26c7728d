package ledger

import "github.com/nubecloud/nube/errcode"

// Errors a caller can tell apart with errors.Is, on any node: the ledger
// sends its own code for each across the wire.
var (
	// ErrMalformed: a transaction or receipt that does not decode or
	// breaks a rule of its shape.
	ErrMalformed = errcode.New(errcode.BadRequest, "malformed ledger transaction")
	// ErrTooLarge: over MaxTxSize, or over another cap (MaxLines).
	ErrTooLarge = errcode.New(errcode.TooLarge, "ledger transaction too large")
	// ErrForged: a signature that does not verify, or a cert that does
	// not make the node its user's.
	ErrForged = errcode.New(errcode.Refused, "ledger signature does not verify")
	// ErrReplay: a transaction whose nonce the ledger has applied.
	ErrReplay = errcode.New(errcode.Conflict, "ledger transaction already applied")
	// ErrStale: a transaction or receipt whose time is too far from the
	// ledger's clock, or an entry stamped too far from a node's clock.
	ErrStale = errcode.New(errcode.Refused, "ledger transaction outside the time window")
	// ErrInsufficient: the payment would take the account past its
	// credit limit; or a trust line would: its voucher's (extending more
	// than it has) or its holder's (withdrawing what it uses).
	ErrInsufficient = errcode.New(errcode.Refused, "over the credit limit")
	// ErrNoReserve: a receipt or release for a reserve the ledger never
	// held (or that expired and went back to its payer).
	ErrNoReserve = errcode.New(errcode.NotFound, "no such reserve")
	// ErrNoLine: the withdrawal of a trust line that does not exist.
	ErrNoLine = errcode.New(errcode.NotFound, "no such trust line")
	// ErrSettled: a receipt or reserve that was settled already.
	ErrSettled = errcode.New(errcode.Conflict, "receipt already settled")
	// ErrBadReceipt: a receipt whose figures do not hold: another payer
	// or node than its reserve's, an amount that is not what its usage
	// costs at the reserve's price, more than was reserved, or more than
	// the payer's node was told.
	ErrBadReceipt = errcode.New(errcode.Refused, "receipt does not hold")
	// ErrInvariant: an entry that passed every rule but would have left
	// the ledger unsound (credit from nothing, a balance past its limit).
	// It is refused, and the node logs it at error: it is a bug.
	ErrInvariant = errcode.New(errcode.Internal, "ledger invariant would break")
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
