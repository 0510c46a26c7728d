package service_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/wasm"
)

// Publish a WebAssembly module as a service: the node adds the module,
// signs a descriptor with the user's key and announces the name. Any node
// can then call it by name.
func ExampleManager_Publish() {
	ctx := context.Background()
	node, err := nube.Start(ctx, nube.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	f, err := os.Open("upper.wasm")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	d, err := node.Services().Publish(ctx, f, service.PublishOptions{Name: "upper", Version: "1.0.0", Description: "upper-cases text"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("published", d.Name, "as", d.ID())
}

// A pipeline is a value: build it with Then, bound its runs, call it, or
// publish it as a service of its own.
func ExamplePipeline_Then() {
	ctx := context.Background()
	node, err := nube.Start(ctx, nube.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	thumbs := node.Service("resize").Then(node.Service("thumbnail")).
		WithLimits(wasm.Limits{Timeout: 5 * time.Second})
	out, err := thumbs.Call(ctx, []byte("...an image..."))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(out), "bytes")
	// Run it on three nodes at once, each result as it arrives.
	for p, r := range node.Service("upper").CallN(ctx, 3, []byte("hi")) {
		fmt.Println(p, string(r.Output), r.Err)
	}
}
