package ledger_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/nubecloud/nube"
)

// A node keeps a ledger of its own and reads its user's account: every
// account starts at zero, with the ledger's limit to spend.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	node, err := nube.Start(ctx, nube.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, NoMDNS: true, NoIPFS: true, NoPortMap: true,
		GroupHeartbeat: 100 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	info, err := node.Ledger().Create(ctx, 0) // a ledger of one node; name peers for more
	if err != nil {
		log.Fatal(err)
	}
	a, err := node.Ledger().Account(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(info.Nodes), "ledger node; balance", a.Balance, "available", a.Available)
	// Output: 1 ledger node; balance 0 available 100000
}
