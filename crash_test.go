package nube_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/nubetest"
)

// childAddEnv makes the test binary, run as a child, add an endless file
// on the data dir it names, printing how far it got.
const childAddEnv = "NUBE_TEST_CHILD_ADD"

// childGetEnv makes the test binary, run as a child, fetch the file
// childCIDEnv names from the provider at childProviderEnv, on the data dir
// it names, printing how far it got.
const (
	childGetEnv      = "NUBE_TEST_CHILD_GET"
	childCIDEnv      = "NUBE_TEST_CHILD_CID"
	childProviderEnv = "NUBE_TEST_CHILD_PROVIDER"
)

func init() {
	if dir := os.Getenv(childGetEnv); dir != "" {
		childGet(dir, os.Getenv(childProviderEnv), os.Getenv(childCIDEnv))
	}
	dir := os.Getenv(childAddEnv)
	if dir == "" {
		return
	}
	cfg := nubetest.TestConfig()
	cfg.DataDir = dir
	n, err := nube.Start(context.Background(), cfg)
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(2)
	}
	// One add that finishes: it must survive the kill.
	done, err := n.Content().Add(context.Background(), io.LimitReader(rand.New(rand.NewSource(8)), 5*content.ChunkSize+1), content.AddOptions{})
	if err != nil {
		fmt.Println("first add:", err)
		os.Exit(2)
	}
	fmt.Printf("done %s\n", done)
	var mu sync.Mutex
	last := int64(0)
	_, err = n.Content().Add(context.Background(), rand.New(rand.NewSource(7)), content.AddOptions{
		Progress: func(b int64) {
			mu.Lock()
			defer mu.Unlock()
			if b-last >= 4<<20 {
				last = b
				fmt.Printf("added %d\n", b)
			}
		},
	})
	fmt.Println("add ended:", err)
	os.Exit(3)
}

// killChildAt runs this test binary as a child with env added, reads the
// progress lines it prints ("PREFIX N"), and kills it (SIGKILL) once N
// reaches at least n. It returns the words of the lines "done WORD" it
// read before; any other line fails the test.
func killChildAt(t *testing.T, prefix string, n int64, env ...string) (done []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		go io.Copy(io.Discard, out)
		cmd.Wait()
	}()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, prefix); ok {
			if b, _ := strconv.ParseInt(v, 10, 64); b >= n {
				return done
			}
			continue
		}
		if v, ok := strings.CutPrefix(line, "done "); ok {
			done = append(done, v)
			continue
		}
		t.Fatalf("child: %s", line)
	}
	t.Fatalf("child ended before %s%d: %v", prefix, n, sc.Err())
	return nil
}

// TestKillDuringAdd kills a node (SIGKILL) half way through an add, starts
// it again on the same data dir, and checks that every block in its store
// matches its CID and that the store works.
func TestKillDuringAdd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	done := killChildAt(t, "added ", 48<<20, childAddEnv+"="+dir)
	if len(done) != 1 {
		t.Fatalf("the child reported %d finished adds, want 1", len(done))
	}
	finished, err := cid.Decode(done[0])
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := nubetest.TestConfig()
	cfg.DataDir = dir
	n, err := nube.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("restart after kill: %v", err)
	}
	defer n.Close()
	v, err := n.Content().Verify(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	// The add was cut mid-write: chunks are in a pack. Those whose
	// records had not reached the OS when the process died are not in the
	// store (nothing was acknowledged); the rest must verify.
	var packed int64
	filepath.WalkDir(filepath.Join(dir, nube.BlocksDir, "packs"), func(_ string, d fs.DirEntry, err error) error {
		if info, ierr := d.Info(); err == nil && ierr == nil && !d.IsDir() {
			packed += info.Size()
		}
		return nil
	})
	t.Logf("after the kill: %d MiB in packs, %d blocks in the store, %d bad", packed>>20, v.Checked, len(v.Bad))
	if packed == 0 || len(v.Bad) > 0 {
		t.Fatalf("store after the kill: %d bytes in packs, %d blocks checked, %d bad", packed, v.Checked, len(v.Bad))
	}
	// The add that finished is whole and pinned; the cut-short one left
	// no pin.
	pins, err := n.Content().Pins(ctx)
	if err != nil || len(pins) != 1 || !pins[0].CID.Equals(finished) {
		t.Fatalf("pins after the kill: %v (%v); want only the finished add's %s", pins, err, finished)
	}
	f, err := n.Get(ctx, finished)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	want, _ := io.ReadAll(io.LimitReader(rand.New(rand.NewSource(8)), 5*content.ChunkSize+1))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the finished add reads back %d bytes (%v), want the %d added", len(got), err, len(want))
	}
	// The store works: GC clears the cut-short add's blocks, an add
	// succeeds.
	gc, err := n.Content().GC(ctx)
	if err != nil || gc.Removed != v.Checked-gc.Kept {
		t.Fatalf("GC = %+v, %v; want all %d blocks of the cut-short add removed", gc, err, v.Checked-gc.Kept)
	}
	if _, err := n.Add(ctx, bytes.NewReader([]byte("after the crash"))); err != nil {
		t.Fatal(err)
	}
}

// TestGCDuringAdd runs GC while an add is under way: GC waits for it, and
// keeps what it added, while removing what no pin reaches.
func TestGCDuringAdd(t *testing.T) {
	t.Parallel()
	n := nubetest.Cluster(t, 1).Node(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	unpinned, err := n.Content().Add(ctx, bytes.NewReader([]byte("not pinned")), content.AddOptions{NoPin: true})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	started := make(chan struct{})
	var once sync.Once
	type result struct {
		c   string
		err error
	}
	added := make(chan result, 1)
	go func() {
		c, err := n.Content().Add(ctx, pr, content.AddOptions{Progress: func(int64) { once.Do(func() { close(started) }) }})
		added <- result{c.String(), err}
	}()
	data := bytes.Repeat([]byte("x"), 3*content.ChunkSize)
	pw.Write(data[:content.ChunkSize])
	<-started
	gcDone := make(chan content.GCResult, 1)
	go func() {
		res, err := n.Content().GC(ctx)
		if err != nil {
			t.Error(err)
		}
		gcDone <- res
	}()
	pw.Write(data[content.ChunkSize:])
	pw.Close()
	r := <-added
	if r.err != nil {
		t.Fatal(r.err)
	}
	res := <-gcDone
	if res.Removed != 1 {
		t.Errorf("GC removed %d blocks, want only the unpinned one", res.Removed)
	}
	if has, _ := n.Content().Has(ctx, unpinned); has {
		t.Error("the unpinned block survived GC")
	}
	f, err := n.Content().Get(ctx, r.c)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the file added during GC reads back %d bytes, %v", len(got), err)
	}
}

// childGet is the child of TestKillDuringGet: it fetches c from provider
// and reports every 4 MiB read, until it is killed.
func childGet(dir, provider, c string) {
	cfg := nubetest.TestConfig()
	cfg.DataDir = dir
	ctx := context.Background()
	n, err := nube.Start(ctx, cfg)
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(2)
	}
	if _, err := n.Connect(ctx, provider); err != nil {
		fmt.Println("connect:", err)
		os.Exit(2)
	}
	f, err := n.Content().Get(ctx, c)
	if err != nil {
		fmt.Println("get:", err)
		os.Exit(2)
	}
	buf := make([]byte, 1<<20)
	var read, last int64
	for {
		k, err := f.Read(buf)
		read += int64(k)
		if read-last >= 4<<20 {
			last = read
			fmt.Printf("read %d\n", read)
		}
		if err != nil {
			fmt.Println("get ended:", err)
			os.Exit(3)
		}
	}
}

// TestKillDuringGet kills a node (SIGKILL) half way through a fetch over
// QUIC and starts it again on the same data dir, with the same peer ID.
// The provider, not told of the crash, may still answer the dead process's
// wants: those blocks are no proof of lying, so the restarted node must not
// ban the provider for them. Its fetch resumes from that provider, and the
// two stay connected once the provider's old connection has timed out.
// (A node used to ban its provider here, some 30 s after the restart, and
// could then neither fetch nor ping it.)
func TestKillDuringGet(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("kills and restarts a fetching process and waits out a QUIC idle timeout; skipped in -short mode")
	}
	ctx := nubetest.Context(t, 3*time.Minute)
	prov := nubetest.Cluster(t, 1).Node(0)
	data := make([]byte, 144<<20)
	rand.New(rand.NewSource(11)).Read(data)
	root, err := prov.Add(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var quic string
	for _, a := range prov.Addrs() {
		if strings.Contains(a.String(), "/quic-v1") {
			quic = a.String()
		}
	}
	if quic == "" {
		t.Fatalf("the provider has no QUIC address: %v", prov.Addrs())
	}

	dir := t.TempDir()
	killChildAt(t, "read ", 16<<20, childGetEnv+"="+dir, childProviderEnv+"="+quic, childCIDEnv+"="+root.String())

	cfg := nubetest.TestConfig()
	cfg.DataDir = dir
	n, err := nube.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("restart after kill: %v", err)
	}
	defer n.Close()
	if _, err := n.Connect(ctx, quic); err != nil {
		t.Fatal(err)
	}
	f, err := n.Get(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the fetch after the restart read %d of %d bytes: %v", len(got), len(data), err)
	}
	// Wait until the provider has given up the dead process's connection
	// (QUIC's idle timeout): until then it may still be answering old
	// wants, which is when the ban used to come.
	nubetest.Eventually(t, ctx, func() bool { return len(prov.Sys().Host().Network().ConnsToPeer(n.ID())) <= 1 },
		func() string { return "the provider never dropped the killed process's connection" })
	if n.Sys().Banned(prov.ID()) {
		t.Fatal("the restarted node banned its honest provider")
	}
	if _, err := n.Ping(ctx, prov.ID()); err != nil {
		t.Fatalf("ping the provider after the restart: %v", err)
	}
	for _, st := range n.Content().Received() {
		if st.Peer == prov.ID() {
			t.Logf("from the provider after the restart: %d blocks taken, %d unrequested dropped", st.Blocks, st.Unrequested)
		}
	}
}
