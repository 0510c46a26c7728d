// Package service runs code by description: WebAssembly modules that any
// node can fetch by CID, check, compile and run in the wasm sandbox.
//
// A service is a signed Descriptor: a name, a version, the module's CID,
// what it reads and writes, the limits it asks for, its price and the key
// of the user who published it. The descriptor is itself content, so its
// CID names it everywhere; a name finds it through the catalogues of
// connected peers and the DHT.
//
// Calling a service needs no installation anywhere: the called node
// verifies the descriptor's signature, fetches the module from whoever has
// it, checks that it hashes to its CID, compiles it once and runs it
// within limits (its own, the descriptor's and the caller's, whichever are
// tightest). A node that runs code for others can turn that off
// (Config.NoCompute) and bounds how many jobs run at once (Config.Slots).
// Every run is metered: CPU time, wall time, peak memory, bytes in and out.
//
// The publisher signs through a crypto.Signer (Config.UserKey, an ed25519
// key however it is held): the descriptor's body and a signature over the
// domain "nube service descriptor v1" and its exact bytes, the envelope
// every layer signs with.
//
// In Go:
//
//	out, err := node.Service("resize").Then(node.Service("thumbnail")).Call(ctx, img)
//	for p, r := range node.Service("wc").CallN(ctx, 3, text) { … }
//
// A Pipeline is a value: pass it around, call it, or Publish it as a
// service of its own, whose descriptor lists its stages.
//
// Pipeline.Cached memoizes a deterministic service: a call returns the
// output of the same run (same descriptor, input and seed) that this
// node, its user's other nodes or the peers it would call hold a signed
// Memo record of, and runs nothing; else it runs and its runner signs a
// record for next time. Another user's record is used only through
// CachedVerify, once K runs agree with it. Runs lent a space and
// pipelines of several stages are not memoized.
package service
