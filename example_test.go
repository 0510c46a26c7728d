package nube_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"strings"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/space"
)

// Two nodes on this machine: one dials the other by address and pings it.
// A zero Config would do as well; this one keeps to loopback and leaves the
// LAN and the router alone.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := nube.Config{
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
		NoMDNS:      true,
		NoIPFS:      true,
		NoPortMap:   true,
	}
	a, err := nube.Start(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := nube.Start(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	id, err := a.Connect(ctx, b.Addrs()[0].String())
	if err != nil {
		log.Fatal(err)
	}
	rtt, err := a.Ping(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("reached b:", id == b.ID(), "round trip > 0:", rtt > 0)
	// Output: reached b: true round trip > 0: true
}

// A node stores a file and another fetches it by its CID, which is the one
// `ipfs add --cid-version 1` gives for the same bytes.
func ExampleNode_Add() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := nube.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, NoMDNS: true, NoIPFS: true, NoPortMap: true}
	a, err := nube.Start(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := nube.Start(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	c, err := a.Add(ctx, strings.NewReader("Hello Mars!\n"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := b.Connect(ctx, a.Addrs()[0].String()); err != nil {
		log.Fatal(err)
	}
	f, err := b.Get(ctx, c)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %q\n", c, data)
	// Output: bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4 "Hello Mars!\n"
}

// Each layer is one accessor on the node: here the content layer pins a
// file and lists the pins, and the spaces layer keeps a key in a space of
// this node alone.
func ExampleNode_layers() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node, err := nube.Start(ctx, nube.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, NoMDNS: true, NoIPFS: true, NoPortMap: true})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	c, err := node.Content().Add(ctx, strings.NewReader("Hello Mars!\n"), content.AddOptions{})
	if err != nil {
		log.Fatal(err)
	}
	pins, err := node.Content().Pins(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("pinned:", len(pins) == 1 && pins[0].CID == c)

	sp, err := node.Spaces().Create(ctx, "notes", space.Policy{Local: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "todo", []byte("water the plants")); err != nil {
		log.Fatal(err)
	}
	v, err := sp.GetBytes(ctx, "todo")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s/todo: %s\n", sp.Name(), v)
	fmt.Println("spaces:", len(node.Spaces().List()))
	// Output:
	// pinned: true
	// notes/todo: water the plants
	// spaces: 1
}

// Config.Validate names what is wrong before anything starts.
func ExampleConfig_Validate() {
	err := nube.Config{ComputeSlots: -1}.Validate()
	fmt.Println(err)
	// Output: Config.ComputeSlots is negative (-1): want 0 for one per CPU, or more
}
