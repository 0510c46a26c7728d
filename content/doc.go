// Package content stores and moves content addressed by its hash, the way
// IPFS does: files and directories become UnixFS DAGs whose CIDs are the
// ones `ipfs add --cid-version 1` gives, blocks live on disk (small ones in
// an embedded Pebble, file chunks appended to pack files), each hashed once
// on its way in and checksummed when read back, and blocks move between nodes over bitswap, so IPFS nodes and nube nodes can
// fetch from each other.
//
// A Store is the local part: blocks, pins and garbage collection. A Service
// puts a Store on the network: it adds, fetches (from many providers at
// once), pins and announces content.
package content
