package cache_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/cache"
	"github.com/nubecloud/nube/space"
)

// A space read through a cache; a write through the cache is read back
// at once.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node, err := nube.Start(ctx, nube.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, NoMDNS: true, NoIPFS: true, NoPortMap: true})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	sp, err := node.Spaces().Create(ctx, "notes", space.Policy{Local: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "todo", []byte("water the plants")); err != nil {
		log.Fatal(err)
	}

	src, err := node.SpaceSource(sp.ID())
	if err != nil {
		log.Fatal(err)
	}
	c, err := node.Cache(ctx, src, cache.Options{})
	if err != nil {
		log.Fatal(err)
	}
	v, err := c.Get(ctx, "todo")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("todo: %s\n", v)
	if err := c.Put(ctx, "todo", []byte("feed the cat")); err != nil {
		log.Fatal(err)
	}
	v, err = c.Get(ctx, "todo")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("todo: %s\n", v)
	// Output:
	// todo: water the plants
	// todo: feed the cat
}
