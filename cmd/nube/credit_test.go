package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/internal/wasmtest"
)

// TestCreditCLI: a ledger of one node, whose user vouches for another
// daemon's (which trusts the ledger node's user to say what the ledger
// is); a priced call from that daemon that shows its cost, a transfer to
// a node resolved to its user, the history, the limits and lines, a spend
// past the limit refused, and a line that cannot be withdrawn from under
// what was spent.
func TestCreditCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two daemons; skipped in -short mode")
	}
	a, b := t.TempDir(), t.TempDir()
	da := startUp(t, a, append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)
	db := startUp(t, b, append([]string{"--api", "127.0.0.1:0", "--gateway", "off", "--bootstrap", da.info.Addrs[0], "--trust", da.info.UserID}, loopback...)...)
	waitPeers(t, a, 1)

	if out, errs, code := run(t, "--data", a, "ledger", "create", "--limit", "20"); code != 0 || !strings.Contains(out, "20.000 credits for each founding user") ||
		!strings.Contains(out, da.info.UserID) {
		t.Fatalf("ledger create: %d %s %s", code, out, errs)
	}
	// B's user founded nothing: it has no credit until A's vouches for it.
	if _, errs, code := run(t, "--data", b, "credit", "send", da.info.UserID, "0.001"); code == 0 || !strings.Contains(errs, "over the credit limit") {
		t.Fatalf("a spend with no credit: %d %s", code, errs)
	}
	if out, errs, code := run(t, "--data", a, "credit", "vouch", db.info.UserID, "20"); code != 0 || !strings.Contains(out, "line of 20.000 credits") {
		t.Fatalf("credit vouch: %d %s %s", code, out, errs)
	}
	mod := filepath.Join(t.TempDir(), "upper.wasm")
	if err := os.WriteFile(mod, wasmtest.Module(t, "upper"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := run(t, "--data", a, "service", "publish", mod, "--name", "dear-upper", "--price-call", "250", "--price-cpu", "1000"); code != 0 {
		t.Fatalf("publish: %s", errs)
	}
	out, errs, code := runIn(t, "hello", "--data", b, "call", "dear-upper", "--on", da.info.ID)
	m := regexp.MustCompile(`the call cost (\d+\.\d{3}) credits`).FindStringSubmatch(errs)
	if code != 0 || out != "HELLO" || m == nil || m[1] < "0.250" {
		t.Fatalf("priced call: %d %q %q (want its cost, 0.250 per call and 1.000 per CPU-second, on stderr)", code, out, errs)
	}
	cost := m[1]
	// Sent to A's node: A's user is paid, and the output says so.
	if out, errs, code := run(t, "--data", b, "credit", "send", da.info.ID, "2.5", "--memo", "thanks"); code != 0 ||
		!strings.Contains(out, "sent 2.500 credits to user "+da.info.UserID+", the user of node "+da.info.ID) {
		t.Fatalf("credit send: %d %s %s", code, out, errs)
	}
	// The call settles in the background: wait for it in B's history.
	var acct client.Account
	deadline := time.Now().Add(time.Minute)
	for {
		out, errs, code := run(t, "--data", b, "credit", "history", "--json")
		if code != 0 {
			t.Fatalf("credit history: %s", errs)
		}
		if err := json.Unmarshal([]byte(out), &acct); err != nil {
			t.Fatal(err)
		}
		kinds := ""
		for _, e := range acct.History {
			kinds += e.Kind + " "
		}
		if strings.Contains(kinds, "settle") && strings.Contains(kinds, "transfer") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B's history never showed the settlement and the transfer: %+v", acct.History)
		}
	}
	paid := -acct.Balance - 2500 // what the call cost B
	if paid < 250 || acct.Reserved != 0 {
		t.Fatalf("B's account after a call and a transfer: %+v", acct)
	}
	out, errs, code = run(t, "--data", a, "credit", "balance", "--json")
	var aAcct client.Account
	if code != 0 || json.Unmarshal([]byte(out), &aAcct) != nil || aAcct.Balance != paid+2500 {
		t.Fatalf("A's balance: %d %s %s (want %d)", code, out, errs, paid+2500)
	}
	if out, errs, code := run(t, "--data", a, "service", "runs"); code != 0 || !strings.Contains(out, "EARNED") || !strings.Contains(out, cost) {
		t.Fatalf("service runs: %d %s %s", code, out, errs)
	}
	if out, errs, code := run(t, "--data", b, "credit", "limits"); code != 0 || !strings.Contains(out, "credit limit   20.000") || !strings.Contains(out, "anyone") ||
		!strings.Contains(out, "vouched by") || !strings.Contains(out, da.info.UserID) {
		t.Fatalf("credit limits: %d %s %s", code, out, errs)
	}
	if _, errs, code := run(t, "--data", a, "credit", "vouch", db.info.UserID, "0"); code == 0 || !strings.Contains(errs, "can go no lower than") {
		t.Fatalf("withdrawing a spent line: %d %s", code, errs)
	}
	if _, errs, code := run(t, "--data", b, "credit", "send", da.info.UserID, "100"); code == 0 || !strings.Contains(errs, "over the credit limit") {
		t.Fatalf("a spend past the limit: %d %s", code, errs)
	}
	var in client.LedgerInfo
	out, errs, code = run(t, "--data", b, "ledger", "info", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &in) != nil || in.Sum != 0 || in.Accounts != 2 || in.Member {
		t.Fatalf("ledger info from B: %d %s %s", code, out, errs)
	}
}

// TestWaitingLine: the line a long command (ledger create and join, group
// join, pin add) prints says what it waits for and its deadline, as a
// clock time, or that it has none.
func TestWaitingLine(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.Local)
	if got := waitingLine("joining group jobs", 30*time.Second, now); got != "joining group jobs (up to 30s, until 15:04:35)..." {
		t.Errorf("with a deadline: %q", got)
	}
	if got := waitingLine("pinning X", 0, now); !strings.Contains(got, "pinning X") || !strings.Contains(got, "no time limit") {
		t.Errorf("without a deadline: %q", got)
	}
}
