package nube_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/nubecloud/nube"
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
