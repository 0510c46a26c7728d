package nube

import (
	"context"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/space"
)

// Ledger is what a program does with the credit ledger: form or join it,
// read accounts, pay. The node owns the ledger's life (no Close here).
// See package ledger.
type Ledger interface {
	// Create forms the ledger of this node and peers, granting limit
	// millicredits of credit to each of their users (zero:
	// ledger.DefaultLimit); other users start with none.
	Create(ctx context.Context, limit int64, peers ...peer.ID) (ledger.Info, error)
	// Join makes this node a ledger node through the ledger node via.
	Join(ctx context.Context, via peer.ID) (ledger.Info, error)
	// Info describes the ledger, as its leader sees it.
	Info(ctx context.Context) (ledger.Info, error)
	// LocalInfo describes this ledger node's own copy.
	LocalInfo(ctx context.Context) (ledger.Info, error)
	// Account returns a user's account; "" is this node's user.
	Account(ctx context.Context, user peer.ID) (ledger.Account, error)
	// Send transfers millicredits from this node's user to another.
	Send(ctx context.Context, to peer.ID, amount int64, memo string) (ledger.Outcome, error)
	// Vouch sets the trust line from this node's user to another: credit
	// it may spend below zero, which this user answers for (zero
	// withdraws it).
	Vouch(ctx context.Context, user peer.ID, amount int64) (ledger.Outcome, error)
	// Submit applies a transaction signed elsewhere.
	Submit(ctx context.Context, st *ledger.SignedTx) (ledger.Outcome, error)
	// IsNode reports whether this node keeps the ledger.
	IsNode() bool
}

// Ledger is the node's door to the credit ledger: balances, transfers,
// history, and (on a ledger node) the ledger itself.
func (n *Node) Ledger() Ledger { return n.ledger }

// Whom a node serves (Offer.To).
const (
	// OfferOwn serves this user's own nodes, and the users and peers the
	// offer trusts. It is the default.
	OfferOwn = "own"
	// OfferUsers is OfferOwn by another name: the users listed, and the
	// node's own.
	OfferUsers = "users"
	// OfferAnyone serves any node: priced services are paid for through
	// the ledger, at no less than the offer's price floor.
	OfferAnyone = "anyone"
)

// Offer is what a node gives other nodes, to whom and on what terms. The
// zero value serves compute and storage to the nodes of this node's own
// user only: nobody runs strangers' code by surprise.
type Offer struct {
	// To is whom the node serves: OfferOwn (the default, also for ""),
	// OfferUsers, or OfferAnyone.
	To string
	// Users are users whose nodes the node serves as its own user's.
	Users []peer.ID
	// Peers are nodes the node serves whoever their user is.
	Peers []peer.ID
	// NoCompute runs no code for other nodes (this node's own calls still
	// run here). Config.NoCompute runs none at all.
	NoCompute bool
	// MinPrice is the price floor: a service priced below it is not run
	// for nodes the offer does not trust.
	MinPrice service.Price
	// StoragePrice is what the node asks, in millicredits per GiB-day,
	// for holding other users' spaces.
	StoragePrice uint64
	// MaxStoragePrice is the most this node's user pays per GiB-day to
	// the holders of its spaces. Zero means ledger.DefaultMaxStoragePrice.
	MaxStoragePrice uint64
	// Jobs bounds the runs for other users at once: the CPU budget the
	// node gives others. Zero means every compute slot.
	Jobs int
	// Disk bounds the bytes of other users' spaces the node holds. Zero
	// means no bound.
	Disk int64
}

// Validate reports a field of o that makes no sense.
func (o Offer) Validate() error {
	switch {
	case o.To != "" && o.To != OfferOwn && o.To != OfferUsers && o.To != OfferAnyone:
		return fmt.Errorf("offer: To is %q: want %q, %q or %q", o.To, OfferOwn, OfferUsers, OfferAnyone)
	case o.Jobs < 0 || o.Disk < 0:
		return fmt.Errorf("offer: Jobs (%d) and Disk (%d) must not be negative", o.Jobs, o.Disk)
	}
	return nil
}

// trusts reports whether the offer serves the node p of user u as its own.
func (o Offer) trusts(self peer.ID, p, u peer.ID) bool {
	return (u != "" && (u == self || slices.Contains(o.Users, u))) || slices.Contains(o.Peers, p)
}

// admitCompute is the service layer's Admit for the offer.
func (o Offer) admitCompute(self, user peer.ID) service.Admit {
	return func(caller, u peer.ID, d *service.Descriptor, paying bool) error {
		if caller == self {
			return nil
		}
		if o.NoCompute {
			return fmt.Errorf("%w: this node runs no code for others", service.ErrNotOffered)
		}
		if o.trusts(user, caller, u) {
			return nil
		}
		if o.To != OfferAnyone {
			return fmt.Errorf("%w: this node runs code for its own user's nodes and those it trusts only (its owner opens it with 'nube up --offer-to anyone')", service.ErrNotOffered)
		}
		if d.Price.PerCall < o.MinPrice.PerCall || d.Price.PerCPUSecond < o.MinPrice.PerCPUSecond {
			return fmt.Errorf("%w: %s is priced below this node's floor (%d per call, %d per CPU second, in millicredits)",
				service.ErrNotOffered, d.Label(), o.MinPrice.PerCall, o.MinPrice.PerCPUSecond)
		}
		return nil
	}
}

// admitStorage is the space layer's AdmitStorage for the offer. Its
// refusals wrap space.ErrNotOffered, so that a caller, here or through the
// API, can tell them from a failure.
func (o Offer) admitStorage(user peer.ID) func(owner peer.ID, bytes, held int64) error {
	return func(owner peer.ID, bytes, held int64) error {
		if !o.trusts(user, "", owner) && o.To != OfferAnyone {
			return fmt.Errorf("%w: this node holds spaces for its own user and the users it trusts only", space.ErrNotOffered)
		}
		if o.Disk > 0 && held+bytes > o.Disk {
			return fmt.Errorf("%w: the space's %d bytes would pass the %d bytes this node gives others (%d held)", space.ErrNotOffered, bytes, o.Disk, held)
		}
		return nil
	}
}

// trustLedger is the ledger's Trust for the offer: the nodes of this
// node's user and those it trusts (--trust), and no others, whatever the
// offer serves them. Membership of the ledger is trust: serving strangers
// compute or storage (OfferAnyone) never makes them ledger nodes, nor
// makes this node believe what they say the ledger is.
func (o Offer) trustLedger(user peer.ID) func(node, u peer.ID) bool {
	return func(node, u peer.ID) bool { return o.trusts(user, node, u) }
}
