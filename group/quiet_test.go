package group_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/nubetest"
)

// logLine is one record a node logged.
type logLine struct {
	node  int
	level slog.Level
	text  string // message and attributes
	group bool   // it carries a "group" attribute: the group layer's
}

// capture keeps the records of every node of a cluster.
type capture struct {
	mu    sync.Mutex
	lines []logLine
}

func (c *capture) since(n int) []logLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]logLine(nil), c.lines[n:]...)
}

func (c *capture) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lines)
}

type captureHandler struct {
	c     *capture
	node  int
	attrs []slog.Attr
}

func (h *captureHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	l := logLine{node: h.node, level: r.Level}
	var sb strings.Builder
	sb.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		if a.Key == "group" {
			l.group = true
		}
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	l.text = sb.String()
	h.c.mu.Lock()
	h.c.lines = append(h.c.lines, l)
	h.c.mu.Unlock()
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &captureHandler{c: h.c, node: h.node, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *captureHandler) WithGroup(string) slog.Handler { return h }

// TestQuietWhileMemberDown kills a member of a 3-member group for many
// heartbeats, then brings it back: the group layer logs a line when it
// goes down and one when it is back, not one per raft retry (raft used to
// write hundreds, each with an escaped multi-line error), and the metrics
// count it.
func TestQuietWhileMemberDown(t *testing.T) {
	t.Parallel()
	logs := &capture{}
	c := nubetest.Cluster(t, 3, nubetest.WithDataDirs(), nubetest.WithConfig(func(i int, cfg *nube.Config) {
		fastGroups(i, cfg)
		cfg.Logger = slog.New(&captureHandler{c: logs, node: i})
	}))
	ctx := nubetest.Context(t, 2*time.Minute)
	gs := formOnNodes(t, ctx, c, "quiet", 0, 1, 2)
	leader := waitLeader(t, ctx, gs...)
	dead, l := -1, -1
	for i := range 3 {
		if c.Node(i).ID() == leader {
			l = i
		} else if dead < 0 {
			dead = i
		}
	}
	deadID := c.Node(dead).ID()
	start := logs.len()
	c.Kill(dead)

	// Writes go on without it, and it stays down for many heartbeats:
	// raft retries it all along.
	for i := range 20 {
		if _, err := gs[l].Put(ctx, fmt.Sprint("k", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	nubetest.Eventually(t, ctx, func() bool {
		st, err := gs[l].Status(ctx)
		if err != nil {
			return false
		}
		for _, m := range st.Members {
			if m.ID == deadID {
				return m.State == "down" && time.Since(m.LastContact) > 20*hb
			}
		}
		return false
	}, func() string { return "the dead member is not down for long" })
	// Over the outage: one line, not one per retry.
	if lines, down := groupLines(t, logs.since(start), dead); down == 0 || len(lines) > 3 {
		t.Fatalf("%d lines from the group layer while a member was down (%d saying it is unreachable), want one:\n%s",
			len(lines), down, strings.Join(lines, "\n"))
	}
	var mf float64
	fams, err := c.Node(l).Sys().Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "nube_group_members_unreachable" {
			for _, m := range f.GetMetric() {
				mf += m.GetGauge().GetValue()
			}
		}
	}
	if mf != 1 {
		t.Errorf("nube_group_members_unreachable on the leader = %v during the outage, want 1", mf)
	}

	// It comes back.
	n, err := c.Restart(ctx, dead)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if i != dead {
			if err := c.Connect(ctx, dead, i); err != nil {
				t.Fatal(err)
			}
		}
	}
	g, err := n.Groups().Open(ctx, "quiet", group.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := g.Get(ctx, "k19"); err != nil || string(v) != "v" {
		t.Fatalf("the member back reads %q, %v", v, err)
	}
	var back bool
	nubetest.Eventually(t, ctx, func() bool {
		for _, x := range logs.since(start) {
			if x.node == l && strings.Contains(x.text, "reachable again") {
				back = true
			}
		}
		return back
	}, func() string { return "the leader never said the member is back" })

	lines, down := groupLines(t, logs.since(start), dead)
	if down == 0 || len(lines) > 6 {
		t.Fatalf("%d lines from the group layer over the outage (%d saying a member is unreachable), want one down and one back:\n%s",
			len(lines), down, strings.Join(lines, "\n"))
	}
	t.Logf("the group layer's lines over the outage:\n%s", strings.Join(lines, "\n"))
}

// groupLines returns the group layer's lines of the nodes other than
// dead, and how many say a member is unreachable. A line must be one line.
func groupLines(t *testing.T, ls []logLine, dead int) (lines []string, down int) {
	t.Helper()
	for _, x := range ls {
		if !x.group || x.node == dead {
			continue
		}
		lines = append(lines, fmt.Sprintf("node %d %s %s", x.node, x.level, x.text))
		if strings.Contains(x.text, "unreachable") {
			down++
		}
		if strings.Contains(x.text, "\n") || strings.Contains(x.text, `\n`) {
			t.Errorf("a line on more than one line: %s", x.text)
		}
	}
	return lines, down
}
