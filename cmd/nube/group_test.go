package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nubecloud/nube/api/client"
)

// groupStatus runs `nube group status NAME --json` on dataDir.
func groupStatus(t *testing.T, dataDir, name string) (client.GroupStatus, string) {
	t.Helper()
	out, errs, code := run(t, "--data", dataDir, "group", "status", name, "--json")
	var st client.GroupStatus
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		return st, errs
	}
	return st, ""
}

// poll calls cond every 100ms until it holds, and fails the test with its
// message if it does not within a minute.
func poll(t *testing.T, cond func() (bool, string)) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for {
		ok, why := cond()
		if ok {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal(why)
		}
	}
}

// TestGroupCLI forms a group of three daemons with the CLI, writes and
// reads through different members, crashes the leader's process (SIGKILL),
// writes through the survivors, and restarts the dead member on its data
// dir: it rejoins with its log and catches up.
func TestGroupCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three daemons and kills one; skipped in -short mode")
	}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	ds := []*daemon{startUp(t, dirs[0], append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)}
	for _, d := range dirs[1:] {
		ds = append(ds, startUp(t, d, append([]string{"--api", "127.0.0.1:0", "--gateway", "off", "--bootstrap", ds[0].info.Addrs[0]}, loopback...)...))
	}
	waitPeers(t, dirs[0], 2)

	out, errs, code := run(t, "--data", dirs[0], "group", "create", "jobs", ds[1].info.ID, ds[2].info.ID)
	if code != 0 || !strings.Contains(out, "group    jobs") {
		t.Fatalf("group create: %d %s %s", code, out, errs)
	}
	for _, d := range dirs[1:] {
		if out, errs, code := run(t, "--data", d, "group", "join", "jobs", ds[0].info.ID); code != 0 {
			t.Fatalf("group join: %d %s %s", code, out, errs)
		}
	}
	if out, errs, code := run(t, "--data", dirs[1], "group", "put", "jobs", "queue/1", "render"); code != 0 || !strings.HasPrefix(out, "version ") {
		t.Fatalf("group put: %d %s %s", code, out, errs)
	}
	if out, errs, code := runIn(t, "from stdin", "--data", dirs[2], "group", "put", "jobs", "queue/2"); code != 0 {
		t.Fatalf("group put from stdin: %d %s %s", code, out, errs)
	}
	if out, _, code := run(t, "--data", dirs[2], "group", "get", "jobs", "queue/1"); code != 0 || out != "render" {
		t.Fatalf("group get: %d %q", code, out)
	}
	out, _, code = run(t, "--data", dirs[0], "group", "get", "jobs", "queue/2", "--json")
	var e client.GroupEntry
	if code != 0 || json.Unmarshal([]byte(out), &e) != nil || string(e.Value) != "from stdin" || e.Version == 0 {
		t.Fatalf("group get --json: %d %s", code, out)
	}
	if out, _, code := run(t, "--data", dirs[0], "group", "cas", "jobs", "owner", "--absent", "a"); code != 0 || out != "swapped\n" {
		t.Fatalf("cas on an absent key: %d %q", code, out)
	}
	if out, _, code := run(t, "--data", dirs[1], "group", "cas", "jobs", "owner", "--absent", "b"); code != 2 || out != "not swapped\n" {
		t.Fatalf("cas on a taken key: %d %q, want exit 2", code, out)
	}
	if out, _, code := run(t, "--data", dirs[1], "group", "cas", "jobs", "owner", "a", "b"); code != 0 {
		t.Fatalf("cas with the right old value: %d %q", code, out)
	}
	if out, _, code := run(t, "--data", dirs[1], "group", "list", "jobs", "queue/"); code != 0 || out != "queue/1\trender\nqueue/2\tfrom stdin\n" {
		t.Fatalf("group list: %d %q", code, out)
	}
	if _, errs, code := run(t, "--data", dirs[1], "group", "get", "nosuch", "k"); code != 1 || !strings.Contains(errs, "no group") {
		t.Fatalf("get from a group the node lacks: %d %s", code, errs)
	}

	// All three up, one leader.
	var st client.GroupStatus
	poll(t, func() (bool, string) {
		var why string
		st, why = groupStatus(t, dirs[2], "jobs")
		up := 0
		for _, m := range st.Members {
			if m.State == "up" || m.State == "leader" {
				up++
			}
		}
		return up == 3 && st.Leader != "", fmt.Sprintf("group never had three members up: %+v %s", st, why)
	})

	// Crash the leader's process.
	dead := -1
	for i, d := range ds {
		if d.info.ID == st.Leader {
			dead = i
		}
	}
	if dead < 0 {
		t.Fatalf("leader %s is none of the daemons", st.Leader)
	}
	ds[dead].cmd.Process.Kill()
	ds[dead].cmd.Wait()
	live := (dead + 1) % 3
	if out, errs, code := run(t, "--data", dirs[live], "group", "put", "jobs", "after", "crash"); code != 0 {
		t.Fatalf("put after the leader's crash: %d %s %s", code, out, errs)
	}
	st, _ = groupStatus(t, dirs[live], "jobs")
	if st.Leader == "" || st.Leader == ds[dead].info.ID {
		t.Fatalf("leader after the crash: %q", st.Leader)
	}

	// The dead member comes back with its log and catches up.
	ds[dead] = startUp(t, dirs[dead], append([]string{"--api", "127.0.0.1:0", "--gateway", "off", "--bootstrap", ds[live].info.Addrs[0]}, loopback...)...)
	poll(t, func() (bool, string) {
		local, _ := groupStatus(t, dirs[dead], "jobs")
		return local.Applied >= st.Commit && local.Leader != "",
			fmt.Sprintf("restarted member never caught up: %+v, want applied %d", local, st.Commit)
	})
	if out, _, code := run(t, "--data", dirs[dead], "group", "get", "jobs", "after"); code != 0 || out != "crash" {
		t.Fatalf("get on the restarted member: %d %q", code, out)
	}
	if out, _, code := run(t, "--data", dirs[dead], "group", "list"); code != 0 || out != "jobs\n" {
		t.Fatalf("group list: %d %q", code, out)
	}
	// ls, the old word for the groups, still lists them; with a group it
	// lists the keys, as list does.
	if out, _, code := run(t, "--data", dirs[dead], "group", "ls"); code != 0 || out != "jobs\n" {
		t.Fatalf("group ls (old word): %d %q", code, out)
	}
	if out, _, code := run(t, "--data", dirs[dead], "group", "ls", "jobs", "after"); code != 0 || out != "after\tcrash\n" {
		t.Fatalf("group ls NAME PREFIX: %d %q", code, out)
	}
}
