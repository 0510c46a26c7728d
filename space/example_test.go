package space_test

import (
	"context"
	"fmt"
	"log"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
)

// A space on one node: create it, write a key, read it back.
func Example() {
	ctx := context.Background()
	node, err := nube.Start(ctx, nubetest.TestConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	notes, err := node.Spaces().Create(ctx, "notes", space.Policy{Local: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := notes.PutBytes(ctx, "todo", []byte("water the plants")); err != nil {
		log.Fatal(err)
	}
	b, err := notes.GetBytes(ctx, "todo")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(b))
	// Output: water the plants
}
