package group

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// health keeps which members this node fails to reach, as its transport
// sees them: it logs one line when a member goes down and one when it is
// back, however often raft retries in between, and counts both in the
// metrics.
type health struct {
	log     *slog.Logger
	group   string
	metrics *metrics // nil: none

	n       atomic.Int64 // len(down), read without the lock on every answer
	mu      sync.Mutex
	down    map[peer.ID]time.Time // since when
	refusal map[string]time.Time  // when each refusal (peer and error) was last logged
}

func newHealth(log *slog.Logger, group string, m *metrics) *health {
	return &health{log: log, group: group, metrics: m, down: map[peer.ID]time.Time{}, refusal: map[string]time.Time{}}
}

// refused notes that p answered an RPC with an error. Raft's line for it
// is left out with the other failures to reach a member (hclogger), so it
// is logged here, once a minute at most for the same peer and error.
func (h *health) refused(p peer.ID, err error) {
	key := p.String() + " " + err.Error()
	h.mu.Lock()
	now := time.Now()
	if t, ok := h.refusal[key]; ok && now.Sub(t) < raftLogEvery {
		h.mu.Unlock()
		return
	}
	if len(h.refusal) > 256 {
		clear(h.refusal)
	}
	h.refusal[key] = now
	h.mu.Unlock()
	h.log.Warn("group member refused a request", "group", h.group, "peer", p, "err", oneLine(err))
}

// failed notes that an RPC to p failed with err.
func (h *health) failed(p peer.ID, err error) {
	h.mu.Lock()
	_, was := h.down[p]
	if !was {
		h.down[p] = time.Now()
		h.n.Store(int64(len(h.down)))
	}
	h.mu.Unlock()
	if was {
		return
	}
	h.log.Warn("group member unreachable; raft retries quietly until it answers", "group", h.group, "peer", p, "err", oneLine(err))
	if h.metrics != nil {
		h.metrics.unreachable.WithLabelValues(h.group).Inc()
		h.metrics.down.WithLabelValues(h.group).Set(float64(h.n.Load()))
	}
}

// reached notes that p answered (or called).
func (h *health) reached(p peer.ID) {
	if h.n.Load() == 0 {
		return
	}
	h.mu.Lock()
	since, was := h.down[p]
	delete(h.down, p)
	h.n.Store(int64(len(h.down)))
	h.mu.Unlock()
	if !was {
		return
	}
	h.log.Info("group member reachable again", "group", h.group, "peer", p, "down", time.Since(since).Round(time.Millisecond))
	if h.metrics != nil {
		h.metrics.down.WithLabelValues(h.group).Set(float64(h.n.Load()))
	}
}

// close drops the group's gauge: it has no members down once closed.
func (h *health) close() {
	if h.metrics != nil {
		h.metrics.down.DeleteLabelValues(h.group)
	}
}

// metrics are the group layer's Prometheus metrics.
type metrics struct {
	unreachable *prometheus.CounterVec
	down        *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		unreachable: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nube_group_peer_unreachable_total",
			Help: "Times a member of a group became unreachable from this node."}, []string{"group"}),
		down: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nube_group_members_unreachable",
			Help: "Members of a group this node cannot reach now."}, []string{"group"}),
	}
	reg.MustRegister(m.unreachable, m.down)
	return m
}

// oneLine flattens an error's text onto one line.
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// raftLogEvery is how often a line raft repeats is logged.
const raftLogEvery = time.Minute

// hclogger turns raft's logs into the node's: warnings and errors only,
// each one slog line with raft's fields as attributes (no second
// timestamp, errors on one line). What raft logs each time it fails to
// reach a member is left out: the transport's health says it once when
// the member goes down and once when it is back. Any other line raft
// repeats is logged once a minute at most, saying how many were left out.
func hclogger(l *slog.Logger) hclog.Logger {
	if l.Handler() == slog.DiscardHandler {
		return hclog.NewNullLogger()
	}
	return &raftLogger{s: &raftLogState{l: l, last: map[string]time.Time{}, skipped: map[string]int{}}}
}

type raftLogState struct {
	l       *slog.Logger
	mu      sync.Mutex
	last    map[string]time.Time // when each message was last logged
	skipped map[string]int       // lines left out since
}

type raftLogger struct {
	s    *raftLogState
	name string
	args []any
}

// peerFailure reports whether raft's message is one it logs on each
// failed attempt to reach a member: it names the member.
func peerFailure(msg string, args []any) bool {
	if !strings.HasPrefix(msg, "failed to ") {
		return false
	}
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "peer", "target", "server-id":
			return true
		}
	}
	return false
}

func (r *raftLogger) Log(level hclog.Level, msg string, args ...any) {
	if level < hclog.Warn || level == hclog.Off || peerFailure(msg, args) {
		return
	}
	s := r.s
	s.mu.Lock()
	now := time.Now()
	if t, ok := s.last[msg]; ok && now.Sub(t) < raftLogEvery {
		s.skipped[msg]++
		s.mu.Unlock()
		return
	}
	if len(s.last) > 256 {
		clear(s.last)
	}
	s.last[msg] = now
	skipped := s.skipped[msg]
	delete(s.skipped, msg)
	s.mu.Unlock()
	attrs := make([]any, 0, len(r.args)+len(args)+4)
	attrs = append(attrs, "from", "raft")
	for _, list := range [][]any{r.args, args} {
		for i := 0; i+1 < len(list); i += 2 {
			v := list[i+1]
			if err, ok := v.(error); ok {
				v = oneLine(err)
			} else {
				v = strings.Join(strings.Fields(fmt.Sprint(v)), " ")
			}
			attrs = append(attrs, fmt.Sprint(list[i]), v)
		}
	}
	if skipped > 0 {
		attrs = append(attrs, "repeated", skipped)
	}
	slevel := slog.LevelWarn
	if level >= hclog.Error {
		slevel = slog.LevelError
	}
	s.l.Log(context.Background(), slevel, msg, attrs...)
}

func (r *raftLogger) Trace(msg string, args ...any) { r.Log(hclog.Trace, msg, args...) }
func (r *raftLogger) Debug(msg string, args ...any) { r.Log(hclog.Debug, msg, args...) }
func (r *raftLogger) Info(msg string, args ...any)  { r.Log(hclog.Info, msg, args...) }
func (r *raftLogger) Warn(msg string, args ...any)  { r.Log(hclog.Warn, msg, args...) }
func (r *raftLogger) Error(msg string, args ...any) { r.Log(hclog.Error, msg, args...) }
func (r *raftLogger) IsTrace() bool                 { return false }
func (r *raftLogger) IsDebug() bool                 { return false }
func (r *raftLogger) IsInfo() bool                  { return false }
func (r *raftLogger) IsWarn() bool                  { return true }
func (r *raftLogger) IsError() bool                 { return true }
func (r *raftLogger) ImpliedArgs() []any            { return r.args }
func (r *raftLogger) Name() string                  { return r.name }
func (r *raftLogger) SetLevel(hclog.Level)          {}
func (r *raftLogger) GetLevel() hclog.Level         { return hclog.Warn }

func (r *raftLogger) With(args ...any) hclog.Logger {
	return &raftLogger{s: r.s, name: r.name, args: append(append([]any(nil), r.args...), args...)}
}

func (r *raftLogger) Named(name string) hclog.Logger {
	if r.name != "" {
		name = r.name + "." + name
	}
	return &raftLogger{s: r.s, name: name, args: r.args}
}

func (r *raftLogger) ResetNamed(name string) hclog.Logger {
	return &raftLogger{s: r.s, name: name, args: r.args}
}

func (r *raftLogger) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return log.New(io.Discard, "", 0)
}

func (r *raftLogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer { return io.Discard }
