package remote_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, nubetest.LeakOptions()...)
}

// Functions every test node serves (they are registered in this binary).
var (
	upper = remote.Func("test.upper", func(ctx context.Context, s string) (string, error) {
		return strings.ToUpper(s), nil
	})
	wordCount = remote.Func("test.wordcount", func(ctx context.Context, text string) (map[string]int, error) {
		out := map[string]int{}
		for _, w := range strings.Fields(text) {
			out[w]++
		}
		return out, nil
	})
	whoami = remote.Func("test.whoami", func(ctx context.Context, _ struct{}) (who, error) {
		return who{Node: remote.Local(ctx).ID(), Caller: remote.Caller(ctx)}, nil
	})
	fail = remote.Func("test.fail", func(ctx context.Context, s string) (string, error) {
		return "", fmt.Errorf("no good: %s", s)
	})
	panicky = remote.Func("test.panic", func(ctx context.Context, s string) (string, error) {
		panic("boom: " + s)
	})
	// onlyOn succeeds only on the node it names. Without a gate it answers
	// at once; with one, the winner waits for the gate to open and the
	// others wait for their context to end.
	onlyOn = remote.Func("test.onlyon", func(ctx context.Context, in onlyIn) (peer.ID, error) {
		self := remote.Local(ctx).ID()
		if in.Token == "" {
			if self != in.Winner {
				return "", errors.New("not me")
			}
			return self, nil
		}
		g := gateOf(in.Token)
		if self == in.Winner {
			select {
			case <-g.release:
				return self, nil
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		g.enter(ctx, self)
		defer g.running.Add(-1)
		<-ctx.Done()
		g.ended <- ctx.Err()
		return "", ctx.Err()
	})
	// block waits for its gate to open or its context to end, telling the
	// gate what happens.
	block = remote.Func("test.block", func(ctx context.Context, token string) (peer.ID, error) {
		g := gateOf(token)
		self := remote.Local(ctx).ID()
		g.enter(ctx, self)
		defer g.running.Add(-1)
		select {
		case <-g.release:
			return self, nil
		case <-ctx.Done():
			g.ended <- ctx.Err()
			return "", ctx.Err()
		}
	})
	// relay calls block on another peer, passing its own context on: the
	// middle of a chain of calls.
	relay = remote.Func("test.relay", func(ctx context.Context, in relayIn) (peer.ID, error) {
		return block.At(remote.Local(ctx), in.To).Call(ctx, in.Token)
	})
	// count yields 0..n-1, each padded to about 100 bytes, and tells the
	// gate (if any) how far it got.
	count = remote.StreamFunc("test.count", func(ctx context.Context, in countIn, yield func(item) error) error {
		var g *gate
		if in.Token != "" {
			g = gateOf(in.Token)
		}
		pad := strings.Repeat("x", in.Pad)
		for i := range in.N {
			if in.FailAt > 0 && i == in.FailAt {
				return fmt.Errorf("failed at %d", i)
			}
			if err := yield(item{I: i, Pad: pad}); err != nil {
				if g != nil {
					g.ended <- err
				}
				return err
			}
			if g != nil {
				g.yielded.Store(int64(i + 1))
			}
		}
		return nil
	})
)

type who struct {
	Node   peer.ID
	Caller peer.ID
}

type relayIn struct {
	To    peer.ID
	Token string
}

type onlyIn struct {
	Winner peer.ID
	Token  string
}

type countIn struct {
	N      int
	FailAt int
	Pad    int
	Token  string
}

type item struct {
	I   int
	Pad string
}

// gate lets a test see into and steer the functions above.
type gate struct {
	started   chan peer.ID
	deadlines chan time.Time
	ended     chan error
	release   chan struct{}
	running   atomic.Int32
	most      atomic.Int32
	yielded   atomic.Int64
}

var (
	gates   sync.Map // token → *gate
	gateSeq atomic.Int64
)

func newGate(t *testing.T) (string, *gate) {
	token := fmt.Sprintf("%s#%d", t.Name(), gateSeq.Add(1))
	g := &gate{
		started:   make(chan peer.ID, 256),
		deadlines: make(chan time.Time, 256),
		ended:     make(chan error, 256),
		release:   make(chan struct{}),
	}
	gates.Store(token, g)
	t.Cleanup(func() { gates.Delete(token) })
	return token, g
}

func gateOf(token string) *gate {
	g, ok := gates.Load(token)
	if !ok {
		panic("no gate " + token)
	}
	return g.(*gate)
}

func (g *gate) enter(ctx context.Context, self peer.ID) {
	n := g.running.Add(1)
	for {
		m := g.most.Load()
		if n <= m || g.most.CompareAndSwap(m, n) {
			break
		}
	}
	if d, ok := ctx.Deadline(); ok {
		g.deadlines <- d
	}
	g.started <- self
}

// wait receives from c or fails the test after a minute: a bound on a hung
// test, not a figure under test.
func wait[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestCall(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	a, b := c.Node(0), c.Node(1)
	ctx := nubetest.Context(t, time.Minute)

	got, err := upper.At(a, b.ID()).Call(ctx, "hello")
	if err != nil || got != "HELLO" {
		t.Fatalf("upper on b = %q, %v", got, err)
	}
	counts, err := wordCount.At(a, b.ID()).Call(ctx, "to be or not to be")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"to": 2, "be": 2, "or": 1, "not": 1}; fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("wordcount = %v, want %v", counts, want)
	}
	w, err := whoami.At(a, b.ID()).Call(ctx, struct{}{})
	if err != nil || w.Node != b.ID() || w.Caller != a.ID() {
		t.Fatalf("whoami on b = %+v, %v; want node %s called by %s", w, err, b.ID(), a.ID())
	}
	// A call to the node itself runs here, through the same encoding.
	w, err = whoami.At(a, a.ID()).Call(ctx, struct{}{})
	if err != nil || w.Node != a.ID() || w.Caller != a.ID() {
		t.Fatalf("whoami on self = %+v, %v", w, err)
	}
}

// TestErrorKinds produces every kind of failure across the wire and checks
// that the caller can tell it apart.
func TestErrorKinds(t *testing.T) {
	c := nubetest.Cluster(t, 4, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		if i == 1 { // serves only upper, and small inputs
			cfg.Remote = remote.Policy{Expose: []string{"test.upper"}, MaxInput: 64 << 10}
		}
	}))
	a, b, d := c.Node(0), c.Node(1), c.Node(2)
	d.Remote().SetPolicy(remote.Policy{Deny: []peer.ID{a.ID()}})
	ctx := nubetest.Context(t, time.Minute)

	check := func(name string, err error, sentinel error, code remote.Code, msg string) {
		t.Helper()
		if !errors.Is(err, sentinel) {
			t.Errorf("%s: err = %v, want one that Is %v", name, err, sentinel)
			return
		}
		var re *remote.Error
		if !errors.As(err, &re) || re.Code != code {
			t.Errorf("%s: err = %#v, want an *remote.Error with code %v", name, err, code)
			return
		}
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: message %q does not say %q", name, err, msg)
		}
	}

	nowhere := remote.Declare[string, string]("test.nowhere")
	_, err := nowhere.At(a, b.ID()).Call(ctx, "x")
	check("unregistered function", err, remote.ErrNoSuchFunction, remote.CodeNoSuchFunction, "test.nowhere")
	_, err = nowhere.At(a, a.ID()).Call(ctx, "x")
	check("unregistered function on self", err, remote.ErrNoSuchFunction, remote.CodeNoSuchFunction, "test.nowhere")
	_, err = wordCount.At(a, b.ID()).Call(ctx, "x")
	check("function not exposed", err, remote.ErrNoSuchFunction, remote.CodeNoSuchFunction, "test.wordcount")

	_, err = upper.At(a, d.ID()).Call(ctx, "x")
	check("denied caller", err, remote.ErrRefused, remote.CodeRefused, "denies")
	if got, err := upper.At(c.Node(3), d.ID()).Call(ctx, "x"); err != nil || got != "X" {
		t.Errorf("a caller not on the deny list: %q, %v", got, err)
	}
	d.Remote().SetPolicy(remote.Policy{Allow: []peer.ID{c.Node(3).ID()}})
	_, err = upper.At(a, d.ID()).Call(ctx, "x")
	check("caller not on the allowlist", err, remote.ErrRefused, remote.CodeRefused, "allowlist")
	d.Remote().SetPolicy(remote.Policy{MaxInput: 1024})
	_, err = upper.At(a, d.ID()).Call(ctx, strings.Repeat("x", 2048))
	check("input over a small cap, on a lane", err, remote.ErrInputTooLarge, remote.CodeInputTooLarge, "1024")

	_, err = panicky.At(a, c.Node(3).ID()).Call(ctx, "x")
	check("panic", err, remote.ErrPanicked, remote.CodePanicked, "boom: x")
	if got, err := upper.At(a, c.Node(3).ID()).Call(ctx, "still up"); err != nil || got != "STILL UP" {
		t.Errorf("after a panic the node answers %q, %v", got, err)
	}
	_, err = panicky.At(a, a.ID()).Call(ctx, "self")
	check("panic on self", err, remote.ErrPanicked, remote.CodePanicked, "boom: self")

	_, err = fail.At(a, c.Node(3).ID()).Call(ctx, "x")
	check("callee error", err, remote.ErrCallee, remote.CodeCallee, "no good: x")

	_, err = upper.At(a, b.ID()).Call(ctx, strings.Repeat("x", 100<<10))
	check("input over the cap, sent while reading", err, remote.ErrInputTooLarge, remote.CodeInputTooLarge, "65536")
	_, err = upper.At(a, b.ID()).Call(ctx, strings.Repeat("x", 64<<10))
	check("input just over the cap", err, remote.ErrInputTooLarge, remote.CodeInputTooLarge, "65536")
	if got, err := upper.At(a, b.ID()).Call(ctx, strings.Repeat("x", 60<<10)); err != nil || len(got) != 60<<10 {
		t.Errorf("an input under the cap: %d bytes back, %v", len(got), err)
	}

	wrongType := remote.Declare[int, string]("test.upper")
	_, err = wrongType.At(a, b.ID()).Call(ctx, 7)
	check("input of the wrong type", err, remote.ErrBadInput, remote.CodeBadInput, "want string")

	token, _ := newGate(t)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = block.At(a, c.Node(3).ID()).Call(short, token)
	check("deadline", err, context.DeadlineExceeded, remote.CodeDeadline, "deadline exceeded")

	_, err = upper.At(a, strangerID(t)).Call(ctx, "x")
	check("a peer no one knows", err, remote.ErrUnreachable, remote.CodeUnreachable, "")
	if re := (*remote.Error)(nil); !errors.As(err, &re) || re.MayHaveRun() {
		t.Errorf("a call to a peer no one knows may have run, it says: %v", err)
	}
}

// strangerID returns the ID of a peer no node knows.
func strangerID(t *testing.T) peer.ID {
	id, err := identity.ID(identity.Generate().Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return id
}
