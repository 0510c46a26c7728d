package remote_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/remote"
)

// exampleWordCount is declared once, at package level: every binary that links
// this package serves it, and calls it by name with Go types, no IDL.
var exampleWordCount = remote.Func("example.wordcount", func(ctx context.Context, text string) (map[string]int, error) {
	counts := map[string]int{}
	for _, w := range strings.Fields(text) {
		counts[w]++
	}
	return counts, nil
})

// exampleLines streams its results, with flow control: yield waits while the
// caller is behind.
var exampleLines = remote.StreamFunc("example.lines", func(ctx context.Context, n int, yield func(string) error) error {
	for i := range n {
		if err := yield(fmt.Sprintf("line %d", i+1)); err != nil {
			return err
		}
	}
	return nil
})

// Two nodes on loopback: a calls the function on b as if it were local.
func ExampleFunc() {
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
	if _, err := a.Connect(ctx, b.Addrs()[0].String()); err != nil {
		log.Fatal(err)
	}

	counts, err := exampleWordCount.At(a, b.ID()).Call(ctx, "to be or not to be")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(counts["to"], counts["be"], counts["or"])
	// Output: 2 2 1
}

// A streaming call is an iterator over the results as they come.
func ExampleStreamFunc() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node, err := nube.Start(ctx, nube.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, NoMDNS: true, NoIPFS: true, NoPortMap: true})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	// A node may call itself: the call goes through the same encoding.
	for line, err := range exampleLines.At(node, node.ID()).Call(ctx, 3) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(line)
	}
	// Output:
	// line 1
	// line 2
	// line 3
}
