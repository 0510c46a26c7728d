package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/names"
	"github.com/nubecloud/nube/nubetest"
)

// kubo is a kubo daemon of the test's own, on loopback: a DHT server
// with no bootstrap peers, its repo in a temporary directory.
type kubo struct {
	t    *testing.T
	repo string
	cmd  *exec.Cmd
	addr string
}

func startKubo(t *testing.T, ctx context.Context) *kubo {
	t.Helper()
	k := &kubo{t: t, repo: filepath.Join(t.TempDir(), "ipfs")}
	k.run(ctx, "init", "--profile", "test")
	k.run(ctx, "config", "Routing.Type", "dhtserver")
	k.run(ctx, "config", "--json", "Addresses.Swarm", `["/ip4/127.0.0.1/tcp/0"]`)
	k.run(ctx, "config", "Addresses.API", "/ip4/127.0.0.1/tcp/0")
	k.run(ctx, "config", "Addresses.Gateway", "/ip4/127.0.0.1/tcp/0")
	k.cmd = exec.Command("ipfs", "daemon")
	k.cmd.Env = append(os.Environ(), "IPFS_PATH="+k.repo)
	out, err := k.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		k.cmd.Process.Kill()
		k.cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		said := false
		for sc.Scan() {
			if !said && strings.Contains(sc.Text(), "Daemon is ready") {
				ready <- true
				said = true
			}
		}
		if !said {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("kubo's daemon ended before it was ready")
		}
	case <-ctx.Done():
		t.Fatal("kubo's daemon was not ready in time")
	}
	k.addr = strings.TrimSpace(k.run(ctx, "id", "-f", "<addrs>"))
	return k
}

// run runs an ipfs command on the test's repo and returns its stdout.
func (k *kubo) run(ctx context.Context, args ...string) string {
	k.t.Helper()
	out, err := k.try(ctx, args...)
	if err != nil {
		k.t.Fatalf("ipfs %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (k *kubo) try(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ipfs", args...)
	cmd.Env = append(os.Environ(), "IPFS_PATH="+k.repo)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// TestKuboInterop: kubo resolves a name nube published and fetches its
// content; nube resolves a name kubo published and fetches its content.
// The two meet on an IPFS DHT of kubo alone (nube joins it as a client, as
// it joins the public one). It needs kubo's ipfs on PATH and skips
// without it. It prints kubo's resolve of nube's name (each a run of the
// ipfs command, its start included) as RESULT lines.
func TestKuboInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("short: starts a kubo process")
	}
	if _, err := exec.LookPath("ipfs"); err != nil {
		t.Skipf("ipfs not on PATH (%v): the kubo interop test needs kubo v0.43 installed; BUILD_KUBO=1 bench/names.sh builds one", err)
	}
	ctx := nubetest.Context(t, 3*time.Minute)
	k := startKubo(t, ctx)

	cfg := nubetest.TestConfig()
	cfg.DataDir = t.TempDir()
	cfg.NoIPFS = false
	cfg.IPFSBootstrap = []string{k.addr}
	n, err := nube.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })

	// nube publishes; kubo resolves and fetches.
	c, err := n.Add(ctx, strings.NewReader("hello from nube\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := n.Names().Publish(ctx, "", c.String(), names.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var resolved string
	nubetest.Eventually(t, ctx, func() bool {
		out, err := k.try(ctx, "name", "resolve", "--nocache", "/ipns/"+p.Name)
		resolved = strings.TrimSpace(out)
		return err == nil
	}, func() string { return "kubo never resolved the name nube published" })
	if resolved != "/ipfs/"+c.String() {
		t.Fatalf("kubo resolved nube's name to %q, want /ipfs/%s", resolved, c)
	}
	if got := k.run(ctx, "cat", "/ipns/"+p.Name); got != "hello from nube\n" {
		t.Fatalf("kubo fetched %q through nube's name", got)
	}
	var took []time.Duration
	for range 10 {
		t0 := time.Now()
		k.run(ctx, "name", "resolve", "--nocache", "/ipns/"+p.Name)
		took = append(took, time.Since(t0))
	}
	slices.Sort(took)
	fmt.Printf("RESULT kubo resolves nube's name (ipfs name resolve --nocache, its process start included): p50 %v  p95 %v\n",
		took[len(took)/2].Round(time.Millisecond), took[len(took)*95/100].Round(time.Millisecond))

	// kubo publishes; nube resolves and fetches.
	kc := strings.TrimSpace(func() string {
		cmd := exec.CommandContext(ctx, "ipfs", "add", "-q", "--cid-version", "1")
		cmd.Env = append(os.Environ(), "IPFS_PATH="+k.repo)
		cmd.Stdin = strings.NewReader("hello from kubo\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}())
	out := k.run(ctx, "name", "publish", "--quieter", "/ipfs/"+kc)
	kname := strings.TrimSpace(out)
	r, err := n.Names().Resolve(ctx, kname)
	if err != nil {
		t.Fatalf("nube resolve of kubo's name %s: %v", kname, err)
	}
	if r.Path != "/ipfs/"+kc {
		t.Fatalf("nube resolved kubo's name to %s, want /ipfs/%s", r.Path, kc)
	}
	f, err := n.Content().Get(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var body bytes.Buffer
	body.ReadFrom(f)
	if body.String() != "hello from kubo\n" {
		t.Fatalf("nube fetched %q through kubo's name", body.String())
	}
}
