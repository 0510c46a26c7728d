package names

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
)

// A Manager over a routing store (here one in memory; a node gives it
// nube's DHT and the IPFS DHT) publishes under the user key and resolves
// the name.
func ExampleManager_Publish() {
	ctx := context.Background()
	_, user, _ := ed25519.GenerateKey(rand.Reader)
	m, err := New(ctx, Config{Routing: &memStore{}, UserKey: user})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	p, err := m.Publish(ctx, Self, "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am", PublishOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := m.Resolve(ctx, "/ipns/"+p.Name)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Path, p.Sequence)
	// Output: /ipfs/bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am 0
}
