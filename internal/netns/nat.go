package netns

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// NAT is how a home router maps its hosts' connections.
type NAT int

const (
	// Cone: Linux's masquerade, which keeps the host's port when it can,
	// so a host has one public address for every destination
	// (endpoint-independent mapping). Hole punching can get through it.
	Cone NAT = iota
	// Symmetric: masquerade with a random port per connection, so each
	// destination sees another address. Hole punching cannot get through.
	Symmetric
)

func (k NAT) String() string {
	if k == Symmetric {
		return "symmetric"
	}
	return "cone"
}

// Net is an internet in miniature, made of named network namespaces for
// one test and removed when it ends: an "internet" namespace whose bridge
// holds 11.0.0.0/24, and homes behind NAT routers on it. Nothing in it
// routes to the machine's own interfaces.
type Net struct {
	t      *testing.T
	prefix string
	cables int
	homes  int
	onEnd  []func()
}

// OnEnd registers f for End to run: how a process in the namespaces is
// told to stop.
func (n *Net) OnEnd(f func()) { n.onEnd = append(n.onEnd, f) }

// End runs every function OnEnd registered, once: called from the first
// of the test's cleanups, it tells every process to stop at once, before
// the cleanups wait for each in turn.
func (n *Net) End() {
	fs := n.onEnd
	n.onEnd = nil
	for _, f := range fs {
		f()
	}
}

// nets numbers the Nets this process makes, so that several at once (one
// per case of a test, or tests in parallel) name their namespaces apart,
// and each removes only its own.
var nets atomic.Int32

// Internet is the name of the namespace that holds the bridge; processes
// run in it listen on public addresses given with Public.
const Internet = "inet"

// NewNet makes the internet namespace, or skips the test (with a message
// saying why) where namespaces, iproute2 or nftables are missing or not
// permitted. A process may have several Nets at once.
func NewNet(t *testing.T) *Net {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("netns: network namespaces need Linux: skipped")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("netns: %s not found (iproute2, nftables): skipped", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("netns: named network namespaces need root: skipped")
	}
	n := &Net{t: t, prefix: fmt.Sprintf("nt%d-%d", os.Getpid()%100000, nets.Add(1))}
	if out, err := exec.Command("ip", "netns", "add", n.Name(Internet)).CombinedOutput(); err != nil {
		t.Skipf("netns: creating a network namespace is not permitted here (%v: %s): skipped", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(n.remove)
	n.ip(Internet, "link", "set", "lo", "up")
	n.ip(Internet, "link", "add", "br0", "type", "bridge")
	n.ip(Internet, "link", "set", "br0", "up")
	n.ip(Internet, "addr", "add", "11.0.0.1/24", "dev", "br0")
	return n
}

// Name returns the system's name of the test's namespace ns.
func (n *Net) Name(ns string) string { return n.prefix + "-" + ns }

// Public gives the internet namespace another address on its bridge
// (11.0.0.x), for a process in it to listen on. 11.0.0.1 is there from the
// start.
func (n *Net) Public(addr string) {
	n.ip(Internet, "addr", "add", addr+"/24", "dev", "br0")
}

// Home adds a home: a router namespace whose WAN side has address wan
// (11.0.0.x) on the internet's bridge and which maps as kind, and behind
// it one host namespace, whose name it returns. The router drops
// unsolicited packets from outside, as home routers do.
func (n *Net) Home(name, wan string, kind NAT) string {
	n.t.Helper()
	n.homes++
	lan := fmt.Sprintf("10.%d.0", n.homes)
	router, host := name+"-r", name
	n.add(router)
	n.add(host)
	n.cable(router, "wan", Internet, "w-"+name)
	n.ip(Internet, "link", "set", "w-"+name, "master", "br0")
	n.ip(router, "addr", "add", wan+"/24", "dev", "wan")
	n.cable(router, "lan", host, "eth0")
	n.ip(router, "addr", "add", lan+".1/24", "dev", "lan")
	n.ip(host, "addr", "add", lan+".2/24", "dev", "eth0")
	n.ip(host, "route", "add", "default", "via", lan+".1")
	masq := "masquerade"
	if kind == Symmetric {
		masq = "masquerade fully-random"
	}
	n.run(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	rules := fmt.Sprintf(`table ip nat {
	chain postrouting { type nat hook postrouting priority 100; oifname "wan" %s; }
}
table ip filter {
	chain input { type filter hook input priority 0; iifname "wan" ct state new drop; }
}
`, masq)
	cmd := n.Command(router, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		n.t.Fatalf("netns: nft in %s: %v: %s", router, err, out)
	}
	return host
}

// Command returns a command that runs name in namespace ns.
func (n *Net) Command(ns, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name(ns), name}, args...)...)
}

// add makes namespace ns with its loopback up.
func (n *Net) add(ns string) {
	n.t.Helper()
	if out, err := exec.Command("ip", "netns", "add", n.Name(ns)).CombinedOutput(); err != nil {
		n.t.Fatalf("netns: ip netns add %s: %v: %s", n.Name(ns), err, out)
	}
	n.ip(ns, "link", "set", "lo", "up")
}

// cable joins namespace a (interface ia) and namespace b (interface ib)
// with a veth pair, both ends up.
func (n *Net) cable(a, ia, b, ib string) {
	n.t.Helper()
	n.cables++
	ta, tb := fmt.Sprintf("%s-%da", n.prefix, n.cables), fmt.Sprintf("%s-%db", n.prefix, n.cables)
	for _, args := range [][]string{
		{"link", "add", ta, "type", "veth", "peer", "name", tb},
		{"link", "set", ta, "netns", n.Name(a)},
		{"link", "set", tb, "netns", n.Name(b)},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			n.t.Fatalf("netns: ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	n.ip(a, "link", "set", ta, "name", ia, "up")
	n.ip(b, "link", "set", tb, "name", ib, "up")
}

// ip runs ip with args in namespace ns.
func (n *Net) ip(ns string, args ...string) {
	n.t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", n.Name(ns)}, args...)...).CombinedOutput(); err != nil {
		n.t.Fatalf("netns: ip -n %s %s: %v: %s", n.Name(ns), strings.Join(args, " "), err, out)
	}
}

// run runs a command in namespace ns.
func (n *Net) run(ns, name string, args ...string) {
	n.t.Helper()
	if out, err := n.Command(ns, name, args...).CombinedOutput(); err != nil {
		n.t.Fatalf("netns: %s %s in %s: %v: %s", name, strings.Join(args, " "), ns, err, out)
	}
}

// remove deletes every namespace of the test (the veth pairs go with
// them).
func (n *Net) remove() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], n.prefix+"-") {
			exec.Command("ip", "netns", "del", f[0]).Run()
		}
	}
}
