// Package names gives content a name that outlives the node that made it:
// IPNS records, as the IPFS specifications define them and as kubo reads
// and writes them, and DNSLink.
//
// A name is a key. The user key is the name "self" (the default); more
// ed25519 keys are made with Manager.Gen and kept in Config.Dir. Publish
// signs a V2 IPNS record (boxo's ipns package makes and checks every
// record: nothing here writes the format by hand) that points the key's
// name at a path (/ipfs/CID[/…] or /ipns/NAME[/…]) and stores it in
// nube's DHT and, when the node has one, in the public IPFS DHT, where kubo
// finds it. While the node runs, every record it published is signed
// again (the next sequence number, a fresh validity) each
// Config.RepublishInterval, so a name outlives the DHT's forgetting of old
// records and its own record's end of validity for as long as some node of
// the key's holder runs.
//
// Resolve follows a name to an immutable /ipfs/ path: an IPNS name (a peer
// ID or a libp2p-key CID, as kubo prints them) through the DHTs, a domain
// through DNSLink (the TXT record of _dnslink.DOMAIN, or Config.DNSLinks,
// or the IPFS_NS_MAP environment variable as in kubo), to at most 32 hops.
// Get and Put read and store one raw record, as `ipfs routing get|put` do.
//
// What is guaranteed: every record taken from the network, or handed to
// Put, is at most ipns.MaxRecordSize bytes, and passes boxo's validator
// (signature by the name's key, a validity not past) before it is used or
// stored; of several, the one with the highest sequence wins (then the
// latest validity). A record says nothing about whether the content it
// names can be fetched.
//
// What is not: a name is only as fresh as the DHT nodes that hold it; a
// record published while nube's DHT was unreachable reaches it at the next
// republish. The public IPFS DHT takes tens of seconds per store, so a
// publish returns once nube's DHT has the record and stores it in the IPFS
// DHT in the background.
package names
