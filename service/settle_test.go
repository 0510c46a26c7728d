package service_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/wasm"
)

// fakePay is Payments without a ledger: reserves name their payer, every
// hold holds, and the provider's settlements do what collect says.
type fakePay struct {
	user    peer.ID
	collect func(ctx context.Context, receipt []byte) error
	check   func() (int64, error)
	// released counts the holds given back.
	released atomic.Int32
}

func (f *fakePay) Reserve(peer.ID, service.Price, int64, time.Duration) ([]byte, error) {
	return []byte(f.user), nil
}

func (f *fakePay) Hold(_ context.Context, reserve []byte, price service.Price, run time.Duration) (service.Hold, error) {
	return service.Hold{ID: []byte("reserve"), Payer: peer.ID(reserve), Price: price, Most: price.Most(run), Expires: time.Now().Add(time.Hour)}, nil
}

func (f *fakePay) Bill(h service.Hold, u wasm.Usage) ([]byte, int64, error) {
	return []byte("receipt"), h.Price.Cost(u.CPU), nil
}

func (f *fakePay) Collect(ctx context.Context, receipt []byte) error { return f.collect(ctx, receipt) }

func (f *fakePay) Release(service.Hold) { f.released.Add(1) }

func (f *fakePay) Check([]byte, peer.ID, []byte, wasm.Usage, time.Duration) (int64, error) {
	if f.check != nil {
		return f.check()
	}
	return 1, nil
}

// pricedPair is a provider and a caller of two users on bare hosts, with
// the payments given, and a priced service published on the provider.
// Close closes the provider's manager (once; the test's end does it
// otherwise).
type pricedPair struct {
	provider, caller *service.Manager
	providerID       peer.ID
	d                *service.Descriptor
	close            func()
}

func newPricedPair(t *testing.T, provider, caller *fakePay) *pricedPair {
	t.Helper()
	return newPricedPairIn(t, "", provider, caller)
}

// newPricedPairIn is newPricedPair with the provider's data in dir.
func newPricedPairIn(t *testing.T, dir string, provider, caller *fakePay) *pricedPair {
	t.Helper()
	ms, hs, closers := payingManagers(t, dir, provider, caller)
	ctx := nubetest.Context(t, 2*time.Minute)
	d, err := ms[0].Publish(ctx, bytes.NewReader(wasmtest.Module(t, "upper")), service.PublishOptions{Name: "upper-priced",
		Price: service.Price{PerCall: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	return &pricedPair{provider: ms[0], caller: ms[1], providerID: hs[0].ID(), d: d, close: closers[0]}
}

// payingManagers starts a service manager on a bare host per payment
// given, each of a user of its own (set in its fakePay), the first with
// its data in dir. Each closer closes one manager and what it runs on
// (once; the test's end does it otherwise).
func payingManagers(t *testing.T, dir string, pays ...*fakePay) ([]*service.Manager, []host.Host, []func()) {
	t.Helper()
	hs := hosttest.Hosts(t, len(pays))
	ctx := nubetest.Context(t, 2*time.Minute)
	var ms []*service.Manager
	var closers []func()
	for i, pay := range pays {
		h := hs[i]
		st, err := content.OpenStore("")
		if err != nil {
			t.Fatal(err)
		}
		cs, err := content.New(ctx, content.Config{Host: h, Store: st})
		if err != nil {
			t.Fatal(err)
		}
		ep, err := remote.New(ctx, remote.Config{Host: h})
		if err != nil {
			t.Fatal(err)
		}
		key := identity.Generate()
		if pay.user, err = identity.ID(key.Public().(ed25519.PublicKey)); err != nil {
			t.Fatal(err)
		}
		cfg := service.Config{
			Host: h, Content: cs, Remote: ep, UserKey: key, Payments: pay,
			Interpreter: nubetest.TestConfig().ComputeInterpreter,
		}
		if i == 0 {
			cfg.Dir = dir
		}
		m, err := service.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		closed := false
		closeAll := func() {
			if !closed {
				closed = true
				m.Close()
				ep.Close()
				cs.Close()
				st.Close()
			}
		}
		t.Cleanup(closeAll)
		ms = append(ms, m)
		closers = append(closers, closeAll)
	}
	return ms, hs, closers
}

func (p *pricedPair) call(ctx context.Context) service.Result {
	for _, r := range p.caller.Service(p.d.ID().String()).On(p.providerID).CallN(ctx, 1, []byte("pay")) {
		return r
	}
	return service.Result{Err: errors.New("no result")}
}

// TestSettledInBackground: a priced run's output goes back while the
// provider's settlement of it still waits on the ledger; a payer with
// MaxOpenRuns runs that the ledger has not settled is refused more
// (ErrUnsettled, across the wire), and served again once they settle.
func TestSettledInBackground(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, service.MaxOpenRuns+1)
	provider := &fakePay{collect: func(ctx context.Context, _ []byte) error {
		select {
		case started <- struct{}{}:
		default: // calls after the first MaxOpenRuns
		}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	p := newPricedPair(t, provider, &fakePay{})
	ctx := nubetest.Context(t, 2*time.Minute)
	for i := range service.MaxOpenRuns {
		// Each call returns while every settlement so far is held up.
		r := p.call(ctx)
		if r.Err != nil || string(r.Output) != "PAY" {
			t.Fatalf("call %d: %q, %v", i, r.Output, r.Err)
		}
		<-started
	}
	r := p.call(ctx)
	if !errors.Is(r.Err, service.ErrUnsettled) || r.Output != nil {
		t.Fatalf("a call past %d unsettled runs: %q, %v; want ErrUnsettled", service.MaxOpenRuns, r.Output, r.Err)
	}
	close(release)
	nubetest.Eventually(t, ctx, func() bool {
		r = p.call(ctx)
		return r.Err == nil
	}, func() string { return fmt.Sprintf("once its runs settled, the payer is still refused: %v", r.Err) })
	runs := p.provider.Runs()
	if last := runs[len(runs)-1]; last.Earned != 1000 {
		t.Fatalf("the provider's record of a run: %+v", last)
	}
}

// TestUnpaidPayerRefused: once the ledger refused to settle one of its
// runs, a payer is refused new runs with ErrUnsettled, which says why.
func TestUnpaidPayerRefused(t *testing.T) {
	collected := make(chan struct{}, 8)
	provider := &fakePay{collect: func(context.Context, []byte) error {
		select {
		case collected <- struct{}{}:
		default:
		}
		return errors.New("no such reserve (never reserved, or expired and returned to its payer)")
	}}
	p := newPricedPair(t, provider, &fakePay{})
	ctx := nubetest.Context(t, 2*time.Minute)
	if r := p.call(ctx); r.Err != nil {
		t.Fatal(r.Err)
	}
	<-collected
	var r service.Result
	nubetest.Eventually(t, ctx, func() bool {
		r = p.call(ctx)
		return r.Err != nil
	}, func() string { return "a payer whose settlement failed is still served" })
	if !errors.Is(r.Err, service.ErrUnsettled) || !bytes.Contains([]byte(r.Err.Error()), []byte("no such reserve")) {
		t.Fatalf("a payer whose settlement failed: %v; want ErrUnsettled saying why", r.Err)
	}
}

// TestCloseEndsSettlements: a settlement that the ledger never answers
// does not keep Close waiting for ever: after a grace it is cancelled,
// and no goroutine is left (TestMain's goleak).
func TestCloseEndsSettlements(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the settlements' grace at Close; skipped in -short mode")
	}
	cancelled := make(chan error, 1)
	provider := &fakePay{collect: func(ctx context.Context, _ []byte) error {
		<-ctx.Done()
		cancelled <- ctx.Err()
		return ctx.Err()
	}}
	p := newPricedPair(t, provider, &fakePay{})
	if r := p.call(nubetest.Context(t, 2*time.Minute)); r.Err != nil {
		t.Fatal(r.Err)
	}
	p.close()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("the settlement ended with %v, want it cancelled", err)
	}
}

// TestUnsettledSurvivesRestart: a run billed but not settled when the
// provider stops (the ledger never answered) is settled when the provider
// starts again on the same data dir, and its receipt is then forgotten.
func TestUnsettledSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the settlements' grace at Close; skipped in -short mode")
	}
	dir := t.TempDir()
	started := make(chan struct{}, 1)
	provider := &fakePay{collect: func(ctx context.Context, _ []byte) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}}
	p := newPricedPairIn(t, dir, provider, &fakePay{})
	ctx := nubetest.Context(t, 2*time.Minute)
	if r := p.call(ctx); r.Err != nil {
		t.Fatal(r.Err)
	}
	<-started
	p.close()

	collected := make(chan []byte, 1)
	again := &fakePay{collect: func(_ context.Context, receipt []byte) error {
		collected <- receipt
		return nil
	}}
	h := hosttest.Hosts(t, 1)[0]
	st, err := content.OpenStore("")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := content.New(ctx, content.Config{Host: h, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := remote.New(ctx, remote.Config{Host: h})
	if err != nil {
		t.Fatal(err)
	}
	m, err := service.New(ctx, service.Config{Host: h, Content: cs, Remote: ep, UserKey: identity.Generate(), Payments: again, Dir: dir,
		Interpreter: nubetest.TestConfig().ComputeInterpreter})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); ep.Close(); cs.Close(); st.Close() })
	select {
	case got := <-collected:
		if string(got) != "receipt" {
			t.Fatalf("the run settled after the restart with receipt %q", got)
		}
	case <-ctx.Done():
		t.Fatal("the run left unsettled was never settled after the restart")
	}
	nubetest.Eventually(t, ctx, func() bool {
		ents, err := os.ReadDir(filepath.Join(dir, "unsettled"))
		return err == nil && len(ents) == 0
	}, func() string { return "the settled receipt is still kept" })
}

// TestOverbilledFlagged: a receipt the caller's check refuses makes the
// call fail with ErrPayment and the check's error, and still reports
// what the provider may take.
func TestOverbilledFlagged(t *testing.T) {
	overbilled := errors.New("the receipt claims more CPU than the whole call took")
	provider := &fakePay{collect: func(context.Context, []byte) error { return nil }}
	caller := &fakePay{check: func() (int64, error) { return 1000, overbilled }}
	p := newPricedPair(t, provider, caller)
	r := p.call(nubetest.Context(t, 2*time.Minute))
	if !errors.Is(r.Err, service.ErrPayment) || !errors.Is(r.Err, overbilled) || r.Cost != 1000 {
		t.Fatalf("an overbilled call: cost %d, %v; want ErrPayment, the check's error and cost 1000", r.Cost, r.Err)
	}
	calls := p.caller.Calls()
	if c := calls[len(calls)-1]; c.Error == "" || c.Cost != 1000 {
		t.Fatalf("the caller's record of an overbilled call: %+v", c)
	}
}
