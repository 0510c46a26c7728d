package api_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/api/client"
)

// A program talks to the running daemon (nube up) as the CLI does: Open
// finds its address and token in the data dir.
func ExampleOpen() {
	home, _ := os.UserHomeDir()
	c, err := client.Open(filepath.Join(home, ".nube"))
	if err != nil {
		log.Fatal(err) // wraps client.ErrNoDaemon when none runs there
	}
	st, err := c.Status(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.ID, st.Peers, "peers")
}

// A program that embeds a node can serve its content to browsers as
// `nube up` does, on a gateway of its own origin.
func ExampleListenGateway() {
	ctx := context.Background()
	node, err := nube.Start(ctx, nube.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	gw, err := api.ListenGateway(node, "127.0.0.1:8080", api.GatewayConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Close()
	fmt.Println("open", gw.URL()+"/ipfs/CID")
}
