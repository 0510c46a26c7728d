// Package group gives a program consensus as a library call: replicated
// groups of nodes that agree on a log with Raft (hashicorp/raft), carried
// over the nodes' own libp2p connections, with no cluster to configure.
//
// Every member opens the group by name with the same member list, and any
// of them may then use it; calls made on a member that does not lead go to
// the leader, and are retried on the next one if it dies:
//
//	g, err := node.Groups().Open(ctx, "jobs", group.Options{Members: []peer.ID{peerB, peerC}})
//	_, err = g.Put(ctx, "queue/1", []byte("render"))
//	ok, err := g.CompareAndSwap(ctx, "owner", nil, []byte("me"))
//	lock, err := g.Lock(ctx, "render") // lease ends if this node dies
//	for change, err := range g.Watch(ctx, "queue/") { … }
//
// The map's reads are linearizable: the leader confirms with a majority
// that it still leads before it answers (raft's VerifyLeader), and writes
// apply exactly once, even when a leader dies after committing one but
// before answering (each write carries an ID the state machine remembers).
// A program with state of its own supplies a StateMachine and calls Apply;
// one whose state is larger than memory (a topic's log) supplies a
// DiskMachine, which learns each entry's log index (to skip what it
// applied already when the log replays at a restart) and whose snapshots
// stream to and from disk.
// Followers apply a write soon after their leader does: when the leader's
// last write under way commits, it tells them at once with a heartbeat,
// rather than with its next append (raft's CommitTimeout, 50 ms, later on
// a quiet group). Status counts the writes each member has applied.
//
// Raft tolerates crashes and cut links, not lying members: a member can
// refuse or delay, and a malicious member could write what it likes. Only
// members may send raft messages or forwarded calls; others are refused
// when their stream opens. Logs and raft state live in a Pebble database
// in the node's data dir, snapshots beside it, so a member that restarts
// rejoins with its log.
package group
