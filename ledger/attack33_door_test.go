package ledger_test

import (
	"sync"
	"testing"
	"time"

	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/nubetest"
)

// TestDoorConcurrentDuplicates: the door prechecks a transaction against
// the member's state, but nothing marks a transaction as under way between
// that check and its entry: a stranger that holds one signed transaction
// not yet applied (a provider holds every caller's reserve before it
// submits it) sends it 64 times at once, each call passes the precheck,
// and each becomes a replicated, fsynced raft entry on every member,
// refused only as it is applied. Issue 33: "a transaction the ledger
// would refuse never becomes an entry".
func TestDoorConcurrentDuplicates(t *testing.T) {
	c := ledgerCluster(t, 4, untickedLedger)
	ctx := nubetest.Context(t, 2*time.Minute)
	payer := c.Node(3)
	st, err := ledger.Sign(payer.Sys().UserKey(), ledger.Tx{Kind: ledger.Transfer, From: payer.UserID(), To: c.Node(0).UserID(), Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := st.Encode()
	if err != nil {
		t.Fatal(err)
	}
	balanced(t, ctx, c)
	w0 := writes(t, ctx, c, 0)
	_, ep := bare(t, ctx, c.Node(0))
	const copies = 64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			impSubmit.At(ep, c.Node(0).ID()).Call(ctx, map[int]any{1: tx})
		}()
	}
	close(start)
	wg.Wait()
	if got := writes(t, ctx, c, 0) - w0; got > 2 {
		t.Fatalf("one transaction sent %d times at once became %d writes to the log (one applies, the rest are refused as replays)", copies, got)
	}
}
