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
// ARCHITECTURE.md ("A space") draws the whole path; RATIONALE.md says why.
package space
