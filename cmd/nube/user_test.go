package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/api/client"
)

// ownOnly is loopback without --offer-to anyone: each daemon serves its
// own user's nodes only, as a daemon does by default.
func ownOnly() []string {
	var out []string
	for i := 0; i < len(loopback); i++ {
		if loopback[i] == "--offer-to" {
			i++
			continue
		}
		out = append(out, loopback[i])
	}
	return append(out, "--api", "127.0.0.1:0", "--gateway", "off")
}

// TestUserNodes is issue 40's three daemons: A holds the user key, B
// joins A's user with an invite (and no copy of the key), C is a
// stranger; none offers anything to anyone else. A's space goes on B but
// not on C; once A removes B, no space of A's goes on B.
func TestUserNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three daemons; skipped in -short mode")
	}
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	da := startUp(t, a, ownOnly()...)

	out, errs, code := run(t, "--data", a, "user", "invite", "--json")
	var inv client.UserInvite
	if code != 0 || json.Unmarshal([]byte(out), &inv) != nil || !strings.HasPrefix(inv.Invite, "nubeinvite1:") || inv.User != da.info.UserID {
		t.Fatalf("user invite: %d %s %s", code, out, errs)
	}
	db := startUp(t, b, append(ownOnly(), "--bootstrap", da.info.Addrs[0], "--join-user", inv.Invite)...)
	if db.info.UserID != da.info.UserID {
		t.Fatalf("B runs for user %s, want A's %s", db.info.UserID, da.info.UserID)
	}
	if _, err := os.Stat(filepath.Join(b, nube.UserKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("B holds a user key: %v", err)
	}
	dc := startUp(t, c, append(ownOnly(), "--bootstrap", da.info.Addrs[0])...)

	// The invite is spent: C cannot use it again; nor an expired one.
	if _, errs, code := run(t, "--data", c, "user", "join", inv.Invite); code == 0 || !strings.Contains(errs, "already used") {
		t.Fatalf("a used invite: %d %s", code, errs)
	}
	out, _, _ = run(t, "--data", a, "user", "invite", "--ttl", "1ms")
	if _, errs, code := run(t, "--data", c, "user", "join", strings.TrimSpace(out)); code == 0 || !strings.Contains(errs, "expired") {
		t.Fatalf("an expired invite: %d %s", code, errs)
	}
	if _, errs, code := run(t, "--data", c, "user", "join", "nubeinvite1:garbage"); code == 0 || !strings.Contains(errs, "not a nube invite") {
		t.Fatalf("a malformed invite: %d %s", code, errs)
	}
	// B is the user's, but signs nothing as the user.
	if _, errs, code := run(t, "--data", b, "space", "create", "mine", "--local"); code == 0 || !strings.Contains(errs, "without its key") {
		t.Fatalf("space create on the keyless node: %d %s", code, errs)
	}
	if _, errs, code := run(t, "--data", b, "user", "invite"); code == 0 || !strings.Contains(errs, "without its key") {
		t.Fatalf("user invite on the keyless node: %d %s", code, errs)
	}

	if out, errs, code := run(t, "--data", a, "space", "create", "notes", "--on", db.info.ID); code != 0 || !strings.Contains(out, "placement  on "+db.info.ID) {
		t.Fatalf("space on the user's joined node: %d %s %s", code, out, errs)
	}
	if out, errs, code := run(t, "--data", a, "space", "create", "theirs", "--on", dc.info.ID); code == 0 {
		t.Fatalf("a stranger held the user's space: %s %s", out, errs)
	}

	out, errs, code = run(t, "--data", a, "user", "nodes", "--json")
	var nodes []client.UserNode
	if code != 0 || json.Unmarshal([]byte(out), &nodes) != nil || len(nodes) != 2 || !nodes[0].Self || !nodes[0].Key || nodes[1].ID != db.info.ID || nodes[1].Removed != nil {
		t.Fatalf("user nodes on A: %d %s %s", code, out, errs)
	}
	if out, errs, code := run(t, "--data", a, "user", "remove", db.info.ID); code != 0 || !strings.Contains(out, "removed "+db.info.ID) {
		t.Fatalf("user remove: %d %s %s", code, out, errs)
	}
	if _, errs, code := run(t, "--data", a, "space", "create", "more", "--on", db.info.ID); code == 0 || !strings.Contains(errs, "removed by its user") {
		t.Fatalf("a space on the removed node: %d %s", code, errs)
	}
	// The removal reached B itself.
	out, _, _ = run(t, "--data", b, "user", "nodes", "--json")
	nodes = nil
	if json.Unmarshal([]byte(out), &nodes) != nil || len(nodes) == 0 || !nodes[0].Self || nodes[0].Removed == nil {
		t.Fatalf("user nodes on B after its removal: %s", out)
	}
}
