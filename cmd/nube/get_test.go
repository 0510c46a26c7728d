package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/nubetest"
)

// TestNoProvider: cat, get, ls and dag export of a CID that no reachable node has end
// after --timeout with an error that says so, and a non-zero exit.
func TestNoProvider(t *testing.T) {
	d := t.TempDir()
	a := startUp(t, d, append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)
	startUp(t, t.TempDir(), append([]string{"--api", "127.0.0.1:0", "--gateway", "off", "--bootstrap", a.info.Addrs[0]}, loopback...)...)
	waitPeers(t, d, 1)
	// A CID of bytes nobody ever added.
	h, err := mh.Sum([]byte(t.Name()+time.Now().String()), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	c := cid.NewCidV1(cid.Raw, h).String()
	for _, cmd := range []string{"cat", "get", "ls", "dag export"} {
		args := append([]string{"--data", d}, strings.Fields(cmd)...)
		_, errs, code := run(t, append(args, "--timeout", "1s", c)...)
		if code == 0 || !strings.Contains(errs, "no provider found for "+c+" after 1s") {
			t.Errorf("%s of a CID nobody has: exit %d, %q", cmd, code, errs)
		}
	}
	if _, errs, code := run(t, "--data", d, "cat", "--timeout", "soon", c); code == 0 || !strings.Contains(errs, "invalid argument") {
		t.Errorf("a bad --timeout: %d %q", code, errs)
	}

	// While cat waits, the line a terminal would show says what the node
	// is doing: it asked its one peer, and nobody provides.
	ended := make(chan int, 1)
	go func() {
		_, _, code := run(t, "--data", d, "cat", "--timeout", "8s", c)
		ended <- code
	}()
	cl, err := client.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	ctx := nubetest.Context(t, time.Minute)
	began := time.Now()
	want := "looking for " + c + ": asked 1 peer, no provider yet (giving up after 8s)"
	var line string
	nubetest.Eventually(t, ctx, func() bool {
		line = lookingLine(ctx, cl, c, 8*time.Second, began)
		return line == want
	}, func() string { return fmt.Sprintf("the waiting line is %q, want %q", line, want) })
	if code := <-ended; code == 0 {
		t.Error("cat of a CID nobody has ended well")
	}
}
