// Package space gives users data they own: a space is a named key/value
// store that belongs to a user key, not to a node. Its owner chooses where
// it lives (the home node alone, named nodes, or N replicas), who may read
// and write it (grants, delegable and revocable), and moves it between
// nodes with one call while the programs that use it keep working.
//
// A space's contents are an ordinary DAG in the content store: a HAMT
// (boxo's, as UnixFS directories use) from each key's tag to an entry that
// holds the key's sealed metadata and links to its value, a UnixFS file of
// sealed segments. Everything a holder stores is ciphertext; key names are
// HMAC tags. The owner signs a head (sequence number, root, placement,
// holders, the space's keys wrapped for each reader, revoked grants) that
// readers resolve and never roll back. The node that created the space is
// its home: it applies every write, one at a time, so no write is lost,
// and pushes each new head to the holders, which pin its root.
//
// The newest head is also kept in the DHT (HeadKey, checked by every DHT
// node with HeadValidator; Config.Values; up to MaxDHTHeadSize), so a
// reader given only OWNER/NAME resolves it with the home and every holder
// off, and reads the blocks any node still provides. The home moves to another node of
// the owner with Space.Home: writes that meet the handover wait, are
// refused by the old home with ErrNotHome and written again at the new
// one by Put and Delete themselves. A home that holds no user key (a
// node that joined its user without it) signs heads with its node key
// under a delegation the head carries (at most MaxHomeChain links, each
// naming a node the owner certified); readers check it as they check the
// signature, and refuse a head signed through a node the user removed
// once a head the user key signed told them of the removal.
//
// Reads go to a holder (or the home) in one round trip that returns the
// blocks on the key's path, each checked against its CID; a holder that
// lies is caught and the next one asked. Migration pins the space on the
// new holders, publishes a head that names them, then releases the old
// ones; readers that reach a holder that let go ask for a newer head.
//
// The home bounds what others can make it carry: a head is never signed
// over MaxHeadSize (the change is refused with ErrHeadTooLarge), and a
// space has at most MaxGrants grants filed, at most MaxGrantsPerIssuer of
// them under any one delegate (ErrTooManyGrants), and grants are filed
// under a delegate GrantBurst at once, then one each GrantEvery
// (ErrGrantRate). A grant counts against every delegate in its chain, so
// the fresh keys a delegate delegates to share its caps and its pace.
// Filing a grant wraps the keys for its grantee alone; only a key
// rotation (a revocation, an expiry) wraps them for every reader, so the
// HPKE work is one seal per filing and at most MaxGrants+1 per rotation.
//
// The user key comes in as a crypto.Signer (Config.UserKey), so it may be
// held where this process cannot read it: it signs heads, grant links and
// changes (each an identity envelope under its own domain string), and
// opens the space keys wrapped for its user, which a key held elsewhere
// does as an X25519 ecdh.KeyExchanger.
//
// A run of a service reaches a space under its caller's rights through a
// loan (Space.Lend, Manager.Borrow): the caller, the owner or a grantee,
// lends one run on one runner node, for one purpose (the module it
// runs), Read and/or Write (never Delegate) on the keys under a prefix,
// until an end at most MaxLoan away. The loan is signed by the caller's
// user key, carries the caller's grant chain, and the space's keys
// wrapped to the runner's node key (under an HPKE info of their own, so
// a loan's box and a reader's cannot be swapped). The runner checks the
// loan is for it and the purpose, not ended, and that the space's head
// revoked no link of the chain, and keeps each read, list and write to
// the prefix. A run's write is a change signed by the runner node with
// the loan attached, and the home checks it again: the node, Write, the
// end (by the home's clock, with no slack), the chain and its
// revocations, and the prefix, on the key's name in the entry it opens
// (the change itself names only the key's tag); the value names the
// caller as its writer. The loan's keys
// stay in the runner's memory for the run, in a Borrowed that never puts
// them in the Manager's cache or on disk, and Close zeroes them. A
// key rotation (a revocation, a grant that expires) leaves a loan unable
// to read what is written after it, or to write at all: the run asks for
// a new loan.
//
// ARCHITECTURE.md ("A space") draws the whole path; RATIONALE.md says why.
package space
