// Package ledger is nube's credit: a mutual-credit ledger that pays nodes
// for the compute and storage they give other users, kept by a few ledger
// nodes as a replicated group.
//
// Every account is a user key. It starts at zero and may go below zero
// down to its limit: the users who founded the ledger are granted one, and
// vouch for others with trust lines that count against their own credit
// (Vouch); a fresh key has none, and earns before it spends. A payment
// moves credit from one account to another, and all balances (with what
// escrow holds) always sum to zero. Amounts are in millicredits, at most
// MaxAmount.
//
//	info, err := node.Ledger().Create(ctx, 0, peerB, peerC) // on one node
//	a, err := node.Ledger().Account(ctx, "")               // this user's
//	_, err = node.Ledger().Send(ctx, user, 2_500, "thanks") // 2.5 credits
//	_, err = node.Ledger().Vouch(ctx, user, 20_000)         // a line of 20
//
// Every transaction is signed by the account it debits, carries a nonce
// and a time, and is applied once; every ledger node checks the signatures
// itself as it applies an entry, so a dishonest ledger node can refuse or
// delay a payment but not forge one. The ledger's time is its members',
// by quorum: a tick carries the signed clocks of a majority of them, and
// no minority of members, nor any signer, can move it.
//
// Keeping the ledger is a matter of trust (Config.Trust), not of what a
// node serves: a ledger is formed by nodes that trust each other, and a
// node joins it only if a majority of its members trust it. Its roster
// (its genesis and members, each change signed by members) is its
// identity: a node that keeps no ledger learns it from a node it trusts,
// asks only its members, and believes what the ledger did (a transaction
// applied, an account, its state) only when a majority of them signed the
// same answer (ErrImpostor when they differ); a refusal is one member's
// word. A send names a user the ledger knows, or a
// node, whose user is paid.
//
// The manager is also the service layer's Payments (Compute): a priced
// run's caller signs a reserve of the most it may cost, the provider puts
// it in escrow while it fetches the module, bills the run's metering in a
// receipt and settles it itself, once, at the reserve's price and within
// its most, returning what was not used: the signed reserve is the
// caller's consent, so a caller cannot skip paying by keeping quiet. And
// it is the space layer's Payments (Storage): holders of another user's
// space are paid per GiB-day after a random block challenge.
//
// The user key comes in as a crypto.Signer (Config.UserKey, an ed25519 key
// however it is held): a transaction's Body and Sig are the envelope every
// layer signs with, under the ledger's own domain strings. Node certs are
// nodecert's.
package ledger
