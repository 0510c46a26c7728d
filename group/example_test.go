package group_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/group"
)

// A group of one node is a replicated map with nobody to replicate to yet:
// a real Raft group, which grows with AddMember.
func Example() {
	ctx := context.Background()
	node, err := nube.Start(ctx, nube.Config{GroupHeartbeat: 100 * time.Millisecond, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, NoMDNS: true, NoIPFS: true, NoPortMap: true})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	g, err := node.Groups().Open(ctx, "jobs", group.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := g.Put(ctx, "queue/1", []byte("render")); err != nil {
		log.Fatal(err)
	}
	swapped, _ := g.CompareAndSwap(ctx, "owner", nil, []byte("me"))
	again, _ := g.CompareAndSwap(ctx, "owner", nil, []byte("you"))
	v, _ := g.Get(ctx, "queue/1")
	fmt.Println(string(v), swapped, again)
	// Output: render true false
}

// Three nodes form a group by each making the same call; then any of them
// takes a lock. If the holder dies, the lock is free again after its lease.
func ExampleGroup_Lock() {
	ctx := context.Background()
	node, err := nube.Start(ctx, nube.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	var b, c peer.ID // the other two members
	g, err := node.Groups().Open(ctx, "render-farm", group.Options{Members: []peer.ID{b, c}})
	if err != nil {
		log.Fatal(err)
	}
	lock, err := g.Lock(ctx, "frame-42")
	if err != nil {
		log.Fatal(err)
	}
	defer lock.Unlock(ctx)
	// Hand the token to what the lock guards, so that it can refuse a
	// holder that lost the lock without knowing.
	fmt.Println("rendering with fencing token", lock.Token())
	select {
	case <-lock.Lost():
		fmt.Println("lease lost: stop")
	default:
	}
}

// Watch yields the changes under a prefix as this member applies them.
func ExampleGroup_Watch() {
	ctx := context.Background()
	node, err := nube.Start(ctx, nube.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	g, err := node.Groups().Open(ctx, "jobs", group.Options{})
	if err != nil {
		log.Fatal(err)
	}
	for c, err := range g.Watch(ctx, "queue/") {
		if err != nil {
			log.Fatal(err) // fell behind: List again, then watch anew
		}
		fmt.Println(c.Key, string(c.Value), c.Deleted)
	}
}

// tally is a program's own replicated state: a count per name.
type tally struct{ counts map[string]int }

func (t *tally) Apply(cmd []byte) ([]byte, error) {
	t.counts[string(cmd)]++
	return fmt.Appendf(nil, "%d", t.counts[string(cmd)]), nil
}
func (t *tally) Snapshot() ([]byte, error) { return fmt.Appendf(nil, "%v", t.counts), nil }
func (t *tally) Restore([]byte) error      { return nil } // a real machine decodes its Snapshot

// A program with state of its own gives the group a StateMachine and
// sends it commands with Apply: every member applies each one once, in the
// same order.
func ExampleGroup_Apply() {
	ctx := context.Background()
	node, err := nube.Start(ctx, nube.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	g, err := node.Groups().Open(ctx, "votes", group.Options{Machine: &tally{counts: map[string]int{}}})
	if err != nil {
		log.Fatal(err)
	}
	n, err := g.Apply(ctx, []byte("alice"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice has", string(n))
}
