package service

import "github.com/nubecloud/nube/errcode"

var (
	// ErrNotFound reports a service no connected peer knows.
	ErrNotFound = errcode.New(errcode.NotFound, "service not found")
	// ErrAmbiguous reports a name that several users have published.
	ErrAmbiguous = errcode.New(errcode.Conflict, "service name is ambiguous")
)

var (
	// ErrBadDescriptor reports a descriptor that is malformed, oversized
	// or breaks a rule (a bad name, both a module and stages…).
	ErrBadDescriptor = errcode.New(errcode.Conflict, "bad service descriptor")
	// ErrBadSignature reports a descriptor whose signature does not
	// verify against its publisher's key: it was forged or altered.
	ErrBadSignature = errcode.New(errcode.Conflict, "service descriptor signature does not verify")
)

// Errors a run on another node can fail with, besides the wasm package's
// (wasm.ErrTimeout, wasm.ErrMemoryLimit…), which come back as they were.
var (
	// ErrNoCompute: the node runs no code for others.
	ErrNoCompute = errcode.New(errcode.Refused, "node runs no code for others")
	// ErrBusy: every compute slot of the node is taken and its wait line
	// is full.
	ErrBusy = errcode.New(errcode.Busy, "node is busy")
	// ErrModuleUnavailable: the node could not fetch the module.
	ErrModuleUnavailable = errcode.New(errcode.Unreachable, "module could not be fetched")
)

var (
	// ErrPayment: a priced run could not be paid for: no reserve, no
	// ledger, over the credit limit, or a receipt that does not hold.
	ErrPayment = errcode.New(errcode.Refused, "payment failed")
	// ErrUnsettled: the node runs nothing more for this payer for now: a
	// settlement of one of its runs here failed, or it has MaxOpenRuns
	// runs here that the ledger has not settled yet. Another node may
	// serve it.
	ErrUnsettled = errcode.New(errcode.Refused, "payer has unsettled runs on this node")
	// ErrNotOffered: the node does not run this service for this caller:
	// its owner offers compute to other users, or at other prices.
	ErrNotOffered = errcode.New(errcode.Refused, "node does not offer compute to this caller")
)

var (
	// ErrNotAllowed: the run's capability does not allow what was asked
	// (a space not granted, a write under a read right, a service not
	// named), or the capability is not for this run (another node,
	// another module, another caller, expired). The message says what
	// is missing.
	ErrNotAllowed = errcode.New(errcode.Refused, "not allowed by the run's capability")
	// ErrBadCapability: a capability or an --allow right that is
	// malformed, oversized or forged.
	ErrBadCapability = errcode.New(errcode.BadRequest, "bad capability")
	// ErrDisagree: runs of a deterministic service on several nodes
	// gave different outputs. errors.As finds the *VerifyError that
	// names the nodes and their outputs' hashes.
	ErrDisagree = errcode.New(errcode.Conflict, "runs disagree")
)
