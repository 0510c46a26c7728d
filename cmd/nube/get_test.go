package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
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
}
