package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/nubetest"
)

// gatewayChildEnv makes the test binary, run as a child, a node on the
// data dir it names. With gatewayAddEnv set it adds a 50 MiB file, prints
// its CID and exits; else it serves its store through a gateway, printing
// the gateway's URL, until its stdin closes. The add is a process of its
// own so that its memory does not count in the gateway's.
const (
	gatewayChildEnv = "NUBE_BENCH_GATEWAY_CHILD"
	gatewayAddEnv   = "NUBE_BENCH_GATEWAY_ADD"
)

func init() {
	if dir := os.Getenv(gatewayChildEnv); dir != "" {
		gatewayChild(dir, os.Getenv(gatewayAddEnv) != "")
	}
}

func gatewayChild(dir string, add bool) {
	cfg := nubetest.TestConfig()
	cfg.DataDir = dir
	ctx := context.Background()
	n, err := nube.Start(ctx, cfg)
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(2)
	}
	defer os.Exit(0)
	defer n.Close()
	if add {
		c, err := n.Content().Add(ctx, newRandom(50<<20, 1), content.AddOptions{})
		if err != nil {
			fmt.Println("add:", err)
			os.Exit(2)
		}
		fmt.Printf("added %s\n", c)
		return
	}
	g, err := api.ListenGateway(n, "127.0.0.1:0", api.GatewayConfig{})
	if err != nil {
		fmt.Println("gateway:", err)
		os.Exit(2)
	}
	defer g.Close()
	fmt.Printf("ready %s\n", g.URL())
	io.Copy(io.Discard, os.Stdin)
}

// child runs the test binary as a gateway child on dir and returns its
// first line of output, split into fields.
func gatewayChildCmd(t *testing.T, dir string, add bool) (*exec.Cmd, io.WriteCloser, []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), gatewayChildEnv+"="+dir)
	if add {
		cmd.Env = append(cmd.Env, gatewayAddEnv+"=1")
	}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	fields := strings.Fields(line)
	if err != nil || len(fields) != 2 || (fields[0] != "ready" && fields[0] != "added") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q %v", line, err)
	}
	go io.Copy(io.Discard, stdout)
	return cmd, stdin, fields
}

// TestGatewaySlowReaders is the review's slow-reader attack: 500 clients
// (from 125 loopback addresses, four each) ask the gateway, a process of
// its own, for a 50 MiB file and read it at 320 KiB/s each. The gateway
// serves as many as its limits allow and refuses the rest; its peak RSS
// must stay under 256 MiB. (Before the limits, 200 such readers took a
// node to 1.96 GB.) NUBE_BENCH_READERS changes the number of readers.
// Linux only (by its file name): it reads the memory figure from /proc and
// dials from the whole of 127/8, which other systems' loopback lacks.
func TestGatewaySlowReaders(t *testing.T) {
	if testing.Short() {
		t.Skip("holds 500 slow connections for 15 s; skipped in -short mode")
	}
	readers := 500
	if n, err := strconv.Atoi(os.Getenv("NUBE_BENCH_READERS")); err == nil && n > 0 {
		readers = n
	}
	const goal = 256 << 20

	dir := t.TempDir()
	add, addIn, added := gatewayChildCmd(t, dir, true)
	addIn.Close()
	if err := add.Wait(); err != nil {
		t.Fatalf("add: %v", err)
	}
	cmd, stdin, ready := gatewayChildCmd(t, dir, false)
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	u := ready[1] + "/ipfs/" + added[1]
	base := peakRSS(t, cmd.Process.Pid)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var mu sync.Mutex
	codes := map[int]int{}
	var read int64
	var wg sync.WaitGroup
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip := net.IPv4(127, 0, 1, byte(1+i/4))
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
			tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
			resp, err := (&http.Client{Transport: tr}).Do(req)
			code := -1
			if err == nil {
				code = resp.StatusCode
				defer resp.Body.Close()
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
			if code != http.StatusOK {
				return
			}
			// Read 32 KiB every 100 ms: a slow client.
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			buf := make([]byte, 32<<10)
			for {
				n, err := io.ReadFull(resp.Body, buf)
				mu.Lock()
				read += int64(n)
				mu.Unlock()
				if err != nil {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	wg.Wait()
	peak := peakRSS(t, cmd.Process.Pid)
	fmt.Printf("RESULT gateway, %d slow readers of a 50 MiB file: peak RSS %d MiB (idle node %d MiB; goal < %d MiB); answers %v (-1: no answer); %d MiB read in all\n",
		readers, peak>>20, base>>20, goal>>20, codes, read>>20)
	if codes[http.StatusOK] == 0 {
		t.Fatalf("no reader was served: %v", codes)
	}
	if peak >= goal {
		t.Fatalf("peak RSS %d MiB, goal under %d MiB", peak>>20, goal>>20)
	}
}

// peakRSS returns a process's peak resident set (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
