package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/space"
	"github.com/nubecloud/nube/wasm"
)

// Compute returns the manager as the service layer's Payments: the escrow
// of priced runs.
func (m *Manager) Compute() service.Payments { return computePay{m} }

type computePay struct{ m *Manager }

// Reserve signs a reserve; it reaches the ledger with the provider's Hold,
// while the provider fetches the module.
func (c computePay) Reserve(provider peer.ID, price service.Price, most int64, ttl time.Duration) ([]byte, error) {
	now := time.Now()
	st, err := Sign(c.m.cfg.UserKey, Tx{Kind: Reserve, From: c.m.user, Provider: provider, Amount: most,
		Price: price, Time: now.UnixNano(), Expires: now.Add(ttl).UnixNano()})
	if err != nil {
		return nil, err
	}
	return st.Encode()
}

// settleTime is how long a reserve must last past its run's end, for the
// provider to settle it.
const settleTime = 30 * time.Second

// Hold puts a caller's reserve on the ledger, if it covers a run of up to
// run and lasts until that run can be settled.
func (c computePay) Hold(ctx context.Context, reserve []byte, price service.Price, run time.Duration) (service.Hold, error) {
	st, err := DecodeTx(reserve)
	if err != nil {
		return service.Hold{}, err
	}
	t := st.tx
	switch {
	case t.Kind != Reserve:
		return service.Hold{}, fmt.Errorf("%w: a %s where a reserve belongs", ErrMalformed, t.Kind)
	case t.Amount < price.Most(run):
		return service.Hold{}, fmt.Errorf("%w: the reserve of %s does not cover a run of up to %v, which may cost %s",
			ErrBadReceipt, Credits(t.Amount), run, Credits(price.Most(run)))
	case time.Until(time.Unix(0, t.Expires)) < run+settleTime:
		return service.Hold{}, fmt.Errorf("%w: the reserve expires before a run of up to %v could end and be settled", ErrBadReceipt, run)
	case t.Provider != c.m.self:
		return service.Hold{}, fmt.Errorf("%w: the reserve is for a run on %s, not on this node", ErrBadReceipt, t.Provider)
	case t.Price != price:
		return service.Hold{}, fmt.Errorf("%w: the reserve is at another price than the service's", ErrBadReceipt)
	}
	if _, err := c.m.Submit(ctx, st); err != nil {
		return service.Hold{}, err
	}
	return service.Hold{ID: t.Nonce, Payer: t.From, Price: t.Price, Most: t.Amount, Expires: time.Unix(0, t.Expires)}, nil
}

// Bill signs the receipt of a held run.
func (c computePay) Bill(h service.Hold, u wasm.Usage) ([]byte, int64, error) {
	cost := min(h.Price.Cost(u.CPU), h.Most)
	r, err := NewReceipt(c.m.cfg.UserKey, c.m.cert, Receipt{Kind: Compute, ID: h.ID, Payer: h.Payer, Payee: c.m.user,
		Node: c.m.self, Amount: cost, CPU: int64(u.CPU), Wall: int64(u.Wall), Memory: u.Memory, In: u.In, Out: u.Out})
	if err != nil {
		return nil, 0, err
	}
	b, err := r.Encode()
	return b, cost, err
}

// Collect settles a receipt this node billed: a settlement signed by this
// node's user and by the node itself, the one the reserve names. It
// tries again while the ledger cannot be reached, until ctx ends.
func (c computePay) Collect(ctx context.Context, receipt []byte) error {
	// The receipt is this node's own, signed here: no signature to check.
	sr, err := decodeReceipt(receipt, false, false)
	if err != nil {
		return err
	}
	st, err := c.m.signForNode(Tx{Kind: Settle, From: c.m.user, Receipt: sr})
	if err != nil {
		return err
	}
	return c.m.submitUntil(ctx, st)
}

// Release gives a hold back, in the background.
func (c computePay) Release(h service.Hold) {
	st, err := c.m.signForNode(Tx{Kind: Release, From: c.m.user, Provider: c.m.self, Ref: h.ID})
	if err != nil {
		c.m.log.Warn("could not release a reserve", "reserve", hex.EncodeToString(h.ID), "err", err)
		return
	}
	st.Cert = &c.m.cert
	c.m.background("release", st)
}

// signForNode signs t with this node's user key, and with the node's own
// key as a transaction that acts for the node (a release, a compute
// settlement) needs.
func (m *Manager) signForNode(t Tx) (*SignedTx, error) {
	st, err := Sign(m.cfg.UserKey, t)
	if err != nil {
		return nil, err
	}
	k := m.cfg.Host.Peerstore().PrivKey(m.self)
	if k == nil {
		return nil, fmt.Errorf("ledger: the host keeps no private key for its own ID %s", m.self)
	}
	raw, err := k.Raw()
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("ledger: the node's key is not an ed25519 key")
	}
	if err := st.SignNode(ed25519.PrivateKey(raw)); err != nil {
		return nil, fmt.Errorf("ledger: the node's key: %w", err)
	}
	return st, nil
}

// Check checks a provider's receipt against what this node reserved, what
// the run reported and how long the call took here, and returns what the
// provider may take for it. The provider settles it itself; a receipt
// that does not hold is logged and its error returned, and the provider
// may still take it, up to the reserve.
func (c computePay) Check(reserve []byte, provider peer.ID, receipt []byte, u wasm.Usage, elapsed time.Duration) (int64, error) {
	// The reserve is this node's own, signed here: no signature to check;
	// nor is the receipt's checked: the ledger checks it as the provider
	// settles it, and this node only looks at its figures.
	res, err := decodeTx(reserve, false)
	if err != nil {
		return 0, err
	}
	sr, err := decodeReceipt(receipt, false, false)
	if err != nil {
		c.m.log.Warn("a provider sent a receipt that does not decode", "provider", provider, "err", err)
		return 0, err
	}
	cost := min(sr.receipt.Amount, res.tx.Amount)
	if err := checkCompute(sr.receipt, res.tx, c.m.user, provider, u, elapsed); err != nil {
		c.m.log.Warn("a provider overbilled: it may settle its receipt, up to the reserve", "provider", provider,
			"reserve", res.tx.ID(), "asks", Credits(sr.receipt.Amount), "err", err)
		return cost, err
	}
	return cost, nil
}

// checkCompute is the payer's check of a compute receipt: its own reserve,
// the provider it called, the metering the run reported, the price, and
// the time the call took here (a run's CPU time fits in it: a module runs
// on one thread); elapsed zero is not checked.
func checkCompute(r *Receipt, res *Tx, payer, provider peer.ID, u wasm.Usage, elapsed time.Duration) error {
	want := min(res.Price.Cost(u.CPU), res.Amount)
	switch {
	case r.Kind != Compute || !bytes.Equal(r.ID, res.Nonce):
		return fmt.Errorf("%w: the receipt is not for this run's reserve", ErrBadReceipt)
	case r.Payer != payer || r.Node != provider:
		return fmt.Errorf("%w: the receipt names payer %s and node %s, the run was %s's on %s", ErrBadReceipt, r.Payer, r.Node, payer, provider)
	case r.CPU != int64(u.CPU) || r.Wall != int64(u.Wall) || r.Memory != u.Memory || r.In != u.In || r.Out != u.Out:
		return fmt.Errorf("%w: the receipt claims %v of CPU, the run's metering recorded %v", ErrBadReceipt, time.Duration(r.CPU), u.CPU)
	case elapsed > 0 && time.Duration(r.CPU) > elapsed:
		return fmt.Errorf("%w: the receipt claims %v of CPU, the whole call took %v here", ErrBadReceipt, time.Duration(r.CPU), elapsed)
	case r.Amount != want:
		return fmt.Errorf("%w: the receipt asks %s, the run cost %s", ErrBadReceipt, Credits(r.Amount), Credits(want))
	}
	return nil
}

// background submits st until the ledger answers (for up to two minutes),
// without holding up the caller.
func (m *Manager) background(what string, st *SignedTx) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(m.ctx, 2*time.Minute)
		defer cancel()
		if err := m.submitUntil(ctx, st); err != nil {
			m.log.Warn("could not "+what, "err", err)
		}
	}()
}

// submitUntil submits st until the ledger applies it or refuses it, or
// ctx or the manager ends; a ledger that cannot be reached is tried
// again, less and less often. A transaction the ledger says it applied
// already (a try whose answer was lost) counts as applied.
func (m *Manager) submitUntil(ctx context.Context, st *SignedTx) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(m.ctx, cancel)()
	wait := 100 * time.Millisecond
	for {
		_, err := m.Submit(ctx, st)
		if errors.Is(err, ErrReplay) && !m.IsNode() {
			// Applied before, says one member: believed only if a
			// majority has it applied.
			err = m.appliedBefore(ctx, st, err)
		}
		switch {
		case err == nil || errors.Is(err, ErrReplay):
			return nil
		case !isUnreachable(err) || ctx.Err() != nil:
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// appliedBefore asks the members whether st was applied, as one of them
// said (replay); nil if a majority says so, else why not, as an error
// that a retry may end.
func (m *Manager) appliedBefore(ctx context.Context, st *SignedTx, said error) error {
	b, err := st.Encode()
	if err != nil {
		return err
	}
	c, err := m.roster(ctx)
	if err != nil {
		return err
	}
	if majority(len(c.members())) <= 1 {
		return said // one member: its word is the ledger's
	}
	o, err := m.agree(ctx, c, kindSubmit, b)
	if err != nil {
		return fmt.Errorf("%w: a member said the transaction was applied (%v), and no majority confirmed it: %v", ErrNoLedger, said, err)
	}
	if o.Code != "" {
		return errorOf(o.Code, o.Msg)
	}
	return nil
}

// isUnreachable reports whether err says the ledger was not reached (so a
// retry may succeed), not that it refused.
func isUnreachable(err error) bool {
	var ce *codedErr
	if errors.As(err, &ce) {
		return ce.sentinel == ErrNoLedger
	}
	return true
}

// storageID is a storage receipt's ID: one per space, node and period, so
// no period is paid twice.
func storageID(space string, node peer.ID, from int64) []byte {
	h := sha256.Sum256(fmt.Appendf(nil, "nube ledger storage v1\n%s\n%s\n%d", space, node, from))
	return h[:nonceSize]
}

// Storage returns the manager as the space layer's Payments: holders of
// this user's spaces are paid per GiB-day, and this node bills for the
// spaces it holds for others at Config.StoragePrice.
func (m *Manager) Storage() space.Payments { return storagePay{m} }

type storagePay struct{ m *Manager }

// Bill signs a storage receipt for a period, or returns nil if this node
// asks nothing for storage.
func (s storagePay) Bill(owner peer.ID, sp string, size int64, from, until time.Time) ([]byte, error) {
	price := s.m.cfg.StoragePrice
	if price == 0 || owner == s.m.user {
		return nil, nil
	}
	r, err := NewReceipt(s.m.cfg.UserKey, s.m.cert, Receipt{Kind: Storage, ID: storageID(sp, s.m.self, from.UnixNano()),
		Payer: owner, Payee: s.m.user, Node: s.m.self, Amount: StorageCost(size, until.Sub(from), price),
		Space: sp, Bytes: size, From: from.UnixNano(), Until: until.UnixNano(), PerGiBDay: price})
	if err != nil {
		return nil, err
	}
	return r.Encode()
}

// Pay checks a holder's storage receipt against the period and size the
// home asked about and the most this user pays, countersigns it and
// settles it.
func (s storagePay) Pay(ctx context.Context, holder peer.ID, receipt []byte, sp string, size int64, from, until time.Time) (int64, error) {
	sr, err := DecodeReceipt(receipt, false)
	if err != nil {
		return 0, err
	}
	r := sr.receipt
	switch {
	case r.Kind != Storage || r.Node != holder || r.Payer != s.m.user || r.Space != sp:
		return 0, fmt.Errorf("%w: the receipt is not %s's for holding %s for %s", ErrBadReceipt, holder, sp, s.m.user)
	case r.Bytes != size || r.From != from.UnixNano() || r.Until != until.UnixNano() || !bytes.Equal(r.ID, storageID(sp, holder, r.From)):
		return 0, fmt.Errorf("%w: the receipt is for another size or period than asked", ErrBadReceipt)
	case r.PerGiBDay > s.m.cfg.MaxStoragePrice:
		return 0, fmt.Errorf("%w: %s asks %s per GiB-day, more than the %s this user pays", ErrBadReceipt, holder,
			Credits(int64(r.PerGiBDay)), Credits(int64(s.m.cfg.MaxStoragePrice)))
	case r.Amount != StorageCost(r.Bytes, until.Sub(from), r.PerGiBDay):
		return 0, fmt.Errorf("%w: the receipt's amount is not its size and period at its price", ErrBadReceipt)
	}
	if err := sr.Countersign(s.m.cfg.UserKey); err != nil {
		return 0, err
	}
	st, err := Sign(s.m.cfg.UserKey, Tx{Kind: Settle, From: s.m.user, Receipt: sr})
	if err != nil {
		return 0, err
	}
	if _, err := s.m.Submit(ctx, st); err != nil {
		return 0, err
	}
	return r.Amount, nil
}
