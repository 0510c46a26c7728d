package group_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
)

// members are bare hosts, each with an endpoint and a group manager.
type members struct {
	hosts []host.Host
	eps   []*remote.Endpoint
	mgrs  []*group.Manager
}

// hb is the heartbeat timeout of test groups: short, so failovers are
// quick, but far above a loaded machine's scheduling delays.
const hb = 500 * time.Millisecond

func startMembers(t *testing.T, n int) *members {
	t.Helper()
	ms := &members{hosts: hosttest.Hosts(t, n)}
	ctx := nubetest.Context(t, 30*time.Second)
	for _, h := range ms.hosts {
		e, err := remote.New(ctx, remote.Config{Host: h})
		if err != nil {
			t.Fatal(err)
		}
		m, err := group.New(ctx, group.Config{Host: h, Remote: e, HeartbeatTimeout: hb})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close(); e.Close() })
		ms.eps = append(ms.eps, e)
		ms.mgrs = append(ms.mgrs, m)
	}
	return ms
}

func (ms *members) ids() []peer.ID {
	var out []peer.ID
	for _, h := range ms.hosts {
		out = append(out, h.ID())
	}
	return out
}

// form opens the group name on every member with the same member list.
func (ms *members) form(t *testing.T, ctx context.Context, name string, opts group.Options) []*group.Group {
	t.Helper()
	opts.Members = ms.ids()
	gs := make([]*group.Group, len(ms.mgrs))
	for i, m := range ms.mgrs {
		g, err := m.Open(ctx, name, opts)
		if err != nil {
			t.Fatal(err)
		}
		gs[i] = g
	}
	return gs
}

func waitLeader(t *testing.T, ctx context.Context, gs ...*group.Group) peer.ID {
	t.Helper()
	var l peer.ID
	nubetest.Eventually(t, ctx, func() bool {
		l = gs[0].Leader()
		for _, g := range gs {
			if g.Leader() == "" || g.Leader() != l {
				return false
			}
		}
		return true
	}, func() string { return "no leader all members agree on" })
	return l
}

func TestMap(t *testing.T) {
	t.Parallel()
	ms := startMembers(t, 3)
	ctx := nubetest.Context(t, 60*time.Second)
	gs := ms.form(t, ctx, "map", group.Options{})
	waitLeader(t, ctx, gs...)

	changes := make(chan group.Change, 16)
	wctx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	watch := gs[2].Watch(wctx, "fruit/") // subscribed now, before the writes
	go func() {
		defer wg.Done()
		for c, err := range watch {
			if err != nil {
				t.Error(err)
				return
			}
			changes <- c
		}
	}()
	// Writes and reads from every member, leader or not.
	for i, g := range gs {
		if _, err := g.Put(ctx, "fruit/"+strconv.Itoa(i), []byte("v"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range gs {
		for i := range gs {
			v, err := g.Get(ctx, "fruit/"+strconv.Itoa(i))
			if err != nil || string(v) != "v"+strconv.Itoa(i) {
				t.Fatalf("get fruit/%d: %q, %v", i, v, err)
			}
		}
	}
	if _, err := gs[0].Get(ctx, "nothing"); !errors.Is(err, group.ErrNotFound) {
		t.Fatalf("get of a missing key: %v, want ErrNotFound", err)
	}
	ok, err := gs[1].CompareAndSwap(ctx, "fruit/0", []byte("wrong"), []byte("x"))
	if err != nil || ok {
		t.Fatalf("CAS with a wrong old value: %v, %v", ok, err)
	}
	ok, err = gs[1].CompareAndSwap(ctx, "fruit/0", []byte("v0"), []byte("x"))
	if err != nil || !ok {
		t.Fatalf("CAS with the right old value: %v, %v", ok, err)
	}
	ok, err = gs[2].CompareAndSwap(ctx, "fruit/new", nil, []byte{})
	if err != nil || !ok {
		t.Fatalf("CAS of an absent key: %v, %v", ok, err)
	}
	if v, err := gs[0].Get(ctx, "fruit/new"); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("empty value reads back as %v, %v", v, err)
	}
	if ok, err := gs[0].Delete(ctx, "fruit/1"); err != nil || !ok {
		t.Fatalf("delete: %v, %v", ok, err)
	}
	list, err := gs[1].List(ctx, "fruit/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range list {
		keys = append(keys, e.Key+"="+string(e.Value))
	}
	if fmt.Sprint(keys) != "[fruit/0=x fruit/2=v2 fruit/new=]" {
		t.Fatalf("list: %v", keys)
	}
	// The watcher saw the seven changes in order.
	var seen []string
	for len(seen) < 6 {
		select {
		case c := <-changes:
			seen = append(seen, fmt.Sprintf("%s:%v:%s", c.Key, c.Deleted, c.Value))
		case <-ctx.Done():
			t.Fatalf("watch saw only %v", seen)
		}
	}
	want := "[fruit/0:false:v0 fruit/1:false:v1 fruit/2:false:v2 fruit/0:false:x fruit/new:false: fruit/1:true:]"
	if fmt.Sprint(seen) != want {
		t.Fatalf("watch saw %v\nwant %v", seen, want)
	}
	stopWatch()
	wg.Wait()

	if _, err := gs[0].Put(ctx, "", nil); !errors.Is(err, group.ErrBadName) {
		t.Fatalf("empty key: %v", err)
	}
	if _, err := gs[0].Put(ctx, "big", make([]byte, group.MaxValue+1)); !errors.Is(err, group.ErrBadName) {
		t.Fatalf("oversized value: %v", err)
	}
}

// counter is a StateMachine: a list of the commands applied, in order.
type counter struct {
	mu  sync.Mutex
	log [][]byte
}

func (c *counter) Apply(cmd []byte) ([]byte, error) {
	if bytes.Equal(cmd, []byte("fail")) {
		return nil, errors.New("refused")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = append(c.log, append([]byte{}, cmd...))
	return []byte(strconv.Itoa(len(c.log))), nil
}

func (c *counter) Snapshot() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Join(c.log, []byte{'\n'}), nil
}

func (c *counter) Restore(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = bytes.Split(b, []byte{'\n'})
	return nil
}

func (c *counter) entries() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.log {
		out = append(out, string(e))
	}
	return out
}

func TestApplyStateMachine(t *testing.T) {
	t.Parallel()
	ms := startMembers(t, 3)
	ctx := nubetest.Context(t, 60*time.Second)
	machines := make([]*counter, 3)
	gs := make([]*group.Group, 3)
	for i, m := range ms.mgrs {
		machines[i] = &counter{}
		g, err := m.Open(ctx, "sm", group.Options{Members: ms.ids(), Machine: machines[i]})
		if err != nil {
			t.Fatal(err)
		}
		gs[i] = g
	}
	waitLeader(t, ctx, gs...)
	for i := range 6 {
		out, err := gs[i%3].Apply(ctx, []byte("cmd"+strconv.Itoa(i)))
		if err != nil || string(out) != strconv.Itoa(i+1) {
			t.Fatalf("apply %d: %q, %v", i, out, err)
		}
	}
	if _, err := gs[1].Apply(ctx, []byte("fail")); !errors.Is(err, group.ErrMachine) {
		t.Fatalf("a machine's error: %v, want ErrMachine", err)
	}
	want := "[cmd0 cmd1 cmd2 cmd3 cmd4 cmd5]"
	nubetest.Eventually(t, ctx, func() bool {
		for _, m := range machines {
			if fmt.Sprint(m.entries()) != want {
				return false
			}
		}
		return true
	}, func() string {
		return fmt.Sprintf("machines hold %v, %v, %v", machines[0].entries(), machines[1].entries(), machines[2].entries())
	})
}

// kill stops member i dead: its host first, so it says nothing more to
// anyone, then its raft and endpoint. The member's Group handles fail from
// then on.
func (ms *members) kill(i int) {
	ms.hosts[i].Close()
	ms.mgrs[i].Close()
	ms.eps[i].Close()
}

func errorsIsNotFound(err error) bool { return errors.Is(err, group.ErrNotFound) }

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, nubetest.LeakOptions()...)
}
