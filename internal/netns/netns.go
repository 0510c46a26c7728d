// Package netns runs a test inside a network namespace of its own, so tests
// that multicast (mDNS) or listen on every interface send nothing past the
// machine: inside, the only interface is a loopback with multicast turned
// on. Linux only; elsewhere, or where namespaces are not permitted, the test
// is skipped with a message saying why.
package netns

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

const envChild = "NUBE_NETNS_CHILD"

// Isolate makes the calling test run in a fresh network namespace. In the
// parent process it re-executes the test binary for just this test under
// `unshare --net`, reports its output and returns false: the caller returns
// at once. In that child it sets up the loopback interface and returns true:
// the caller goes on with its body.
func Isolate(t *testing.T) bool {
	t.Helper()
	if os.Getenv(envChild) == t.Name() {
		setupLoopback(t)
		return true
	}
	if runtime.GOOS != "linux" {
		t.Skip("netns: network namespaces need Linux: skipped")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("netns: unshare not found (util-linux): skipped")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("netns: ip not found (iproute2): skipped")
	}
	if out, err := exec.Command(unshare, "--net", "true").CombinedOutput(); err != nil {
		t.Skipf("netns: creating a network namespace is not permitted here (%v: %s): skipped", err, strings.TrimSpace(string(out)))
	}
	args := []string{"--net", os.Args[0], "-test.run=^" + t.Name() + "$", "-test.v"}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(os.Environ(), envChild+"="+t.Name())
	out, err := cmd.CombinedOutput()
	t.Logf("in its own network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("test failed in its network namespace: %v", err)
	}
	return false
}

func setupLoopback(t *testing.T) {
	t.Helper()
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "set", "lo", "multicast", "on"},
		{"route", "add", "224.0.0.0/4", "dev", "lo"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("netns: ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
}

// AddAddr gives the namespace's loopback interface another address, such
// as a public-looking "11.0.0.1/32", so that a node listening on it passes
// for one on the internet. Call it only inside the namespace, after Isolate
// returned true.
func AddAddr(t *testing.T, cidr string) {
	t.Helper()
	if os.Getenv(envChild) != t.Name() {
		t.Fatal("netns: AddAddr outside the test's own namespace would change the host's network")
	}
	if out, err := exec.Command("ip", "addr", "add", cidr, "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("netns: ip addr add %s: %v: %s", cidr, err, out)
	}
}
