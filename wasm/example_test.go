package wasm_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/nubecloud/nube/wasm"
)

// Limits left at zero take the defaults; a node caps what callers ask for
// with its own maximum.
func ExampleLimits_WithDefaults() {
	l := wasm.Limits{Timeout: 2 * time.Second}.WithDefaults()
	fmt.Println(l.Timeout, wasm.Size(l.Memory))
	// Output: 2s 64 MiB
}

// The sandbox on its own: compile a WASI module (checked against its CID
// by the function given in Config.ModuleCID, if any) and run it on some
// input, within limits.
func ExampleRuntime_Compile() {
	ctx := context.Background()
	rt, err := wasm.New(ctx, wasm.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close(ctx)
	code, err := os.ReadFile("upper.wasm") // any WASI preview 1 module
	if err != nil {
		log.Fatal(err)
	}
	c, _ := cid.Decode("bafkrei...") // the module's CID, as `nube add` printed it
	m, err := rt.Compile(ctx, c, code)
	if err != nil {
		log.Fatal(err)
	}
	res, err := m.Run(ctx, wasm.Job{Input: []byte("hello"), Limits: wasm.Limits{Timeout: time.Second}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (%v of CPU)\n", res.Output, res.Usage.CPU)
}
