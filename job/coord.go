package job

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// coord is one job on its coordinator: its record, and the runs under
// way while its loop goes (loop.go).
type coord struct {
	m    *Manager
	id   string
	spec Spec
	done chan struct{}

	ctx  context.Context
	stop context.CancelCauseFunc

	mu       sync.Mutex
	rec      *record
	begun    time.Time // this coordinator's start of the job
	phase    string
	running  int
	reserved int64
	durs     []time.Duration // of the tasks done, for the ETA
	result   cid.Cid
	err      error
}

func (c *coord) logf(t *task, node peer.ID, format string, args ...any) {
	l := LogLine{At: time.Now().UTC(), Msg: fmt.Sprintf(format, args...), Node: node}
	if t != nil {
		l.Task = t.Name
	}
	c.mu.Lock()
	c.rec.Log = appendCapped(c.rec.Log, l)
	c.mu.Unlock()
	c.m.log.Debug(l.Msg, "job", c.id, "task", l.Task, "peer", node)
}

func appendCapped(s []LogLine, l LogLine) []LogLine {
	if len(s) >= MaxLogLines {
		s = slices.Delete(s, 0, len(s)-MaxLogLines+1)
	}
	return append(s, l)
}

func (c *coord) progress() Progress { return c.status().Progress }

func (c *coord) status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rec
	s := Status{ID: c.id, Spec: c.spec, State: r.State, Started: r.Started, Ended: r.Ended, Error: r.Error,
		Disagreements: slices.Clone(r.Disagreements)}
	if r.Result != "" {
		s.Result, _ = cid.Decode(r.Result)
	}
	p := Progress{Phase: c.phase, Tasks: len(r.Maps) + len(r.Reduces), Running: c.running, Failed: r.Failed,
		BytesLocal: r.BytesLocal, BytesFetched: r.BytesFetched, Nodes: len(r.Nodes), Spent: r.Spent, Reserved: c.reserved}
	for _, t := range r.Maps {
		if t.Done {
			p.Done++
		}
	}
	for _, t := range r.Reduces {
		if t.Done {
			p.Done++
		}
	}
	p.Elapsed = r.Elapsed
	if r.State == Running {
		p.Elapsed += time.Since(c.begun)
		if len(c.durs) > 0 && p.Done < p.Tasks {
			var sum time.Duration
			for _, d := range c.durs {
				sum += d
			}
			p.ETA = sum / time.Duration(len(c.durs)) * time.Duration(p.Tasks-p.Done) / time.Duration(max(1, c.running))
		}
	} else {
		p.Phase = ""
	}
	s.Progress = p
	return s
}

func (c *coord) logs() []LogLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.rec.Log)
}

func (c *coord) wait(ctx context.Context) (cid.Cid, error) {
	select {
	case <-c.done:
	case <-ctx.Done():
		return cid.Undef, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.result, c.err
}

func (c *coord) cancel(err error) {
	if c.stop != nil {
		c.stop(err)
	}
}

// withDefaults checks s and fills in its zero fields.
func (s Spec) withDefaults() (Spec, error) {
	s.Input = strings.TrimSpace(s.Input)
	switch {
	case s.Input == "":
		return s, fmt.Errorf("%w: no input", ErrBadSpec)
	case strings.TrimSpace(s.Map) == "":
		return s, fmt.Errorf("%w: no map service", ErrBadSpec)
	case s.Reducers < 0 || s.Reducers > maxReducers:
		return s, fmt.Errorf("%w: %d reducers; from 1 to %d", ErrBadSpec, s.Reducers, maxReducers)
	case s.Split.Size < 0:
		return s, fmt.Errorf("%w: split size %d", ErrBadSpec, s.Split.Size)
	case !(s.VerifyFraction >= 0 && s.VerifyFraction <= 1):
		return s, fmt.Errorf("%w: verify fraction %v is not between 0 and 1", ErrBadSpec, s.VerifyFraction)
	case s.TaskTimeout < 0 || s.Timeout < 0 || s.MaxAttempts < 0:
		return s, fmt.Errorf("%w: a negative timeout or attempts", ErrBadSpec)
	}
	if s.Reducers == 0 {
		s.Reducers = 1
	}
	if s.Reduce == "" {
		s.Reducers = 1 // the map outputs are the result, one file each
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = DefaultAttempts
	}
	if strings.HasPrefix(s.Input, "space:") {
		if _, _, _, err := splitSpaceInput(s.Input); err != nil {
			return s, err
		}
	} else if _, err := cid.Decode(strings.SplitN(s.Input, "/", 2)[0]); err != nil {
		return s, fmt.Errorf("%w: input %q is not a CID, CID/path or space:OWNER/NAME/PREFIX", ErrBadSpec, s.Input)
	}
	return s, nil
}

// maxReducers caps R.
const maxReducers = 10_000

// splitSpaceInput reads "space:OWNER/NAME/PREFIX".
func splitSpaceInput(in string) (space, prefix string, ok bool, err error) {
	parts := strings.SplitN(strings.TrimPrefix(in, "space:"), "/", 3)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return "", "", false, fmt.Errorf("%w: input %q: want space:OWNER/NAME/PREFIX", ErrBadSpec, in)
	}
	if len(parts) == 3 {
		prefix = parts[2]
	}
	return parts[0] + "/" + parts[1], prefix, true, nil
}

func (m *Manager) newCoord(_ context.Context, s Spec) (*coord, error) {
	r := &record{ID: newID(), Spec: s, State: Running, Started: time.Now().UTC()}
	if err := m.save(r); err != nil {
		return nil, fmt.Errorf("job: keep the job: %w", err)
	}
	return m.coordOf(r), nil
}

func (m *Manager) coordOf(r *record) *coord {
	c := &coord{m: m, id: r.ID, spec: r.Spec, done: make(chan struct{}), rec: r, begun: time.Now()}
	if r.State != Running {
		close(c.done)
		if r.Result != "" {
			c.result, _ = cid.Decode(r.Result)
		}
		if r.Error != "" {
			c.err = errors.New(r.Error)
		}
	}
	return c
}

// start runs c in the background, owned by the manager.
func (m *Manager) start(c *coord) {
	timeout := c.spec.Timeout - c.rec.Elapsed
	ctx, stop := context.WithCancelCause(m.ctx)
	ctx, endTimer := context.WithTimeoutCause(ctx, max(timeout, time.Millisecond), fmt.Errorf("%w: job %s is past its timeout of %v", context.DeadlineExceeded, c.id, c.spec.Timeout))
	c.ctx, c.stop = ctx, stop
	m.mu.Lock()
	m.jobs[c.id] = c
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer stop(nil)
		defer endTimer()
		c.run()
	}()
}

// resume loads the jobs kept in Dir and starts those left running.
func (m *Manager) resume() error {
	recs, err := m.load()
	if err != nil {
		return err
	}
	for _, r := range recs {
		c := m.coordOf(r)
		if r.State != Running {
			m.mu.Lock()
			m.jobs[r.ID] = c
			m.mu.Unlock()
			continue
		}
		c.logf(nil, "", "coordinator restarted: resuming with %d of %d tasks done", countDone(r), len(r.Maps)+len(r.Reduces))
		m.start(c)
	}
	return nil
}

func countDone(r *record) int {
	n := 0
	for _, t := range append(slices.Clone(r.Maps), r.Reduces...) {
		if t.Done {
			n++
		}
	}
	return n
}

// run does the job and records how it ended.
func (c *coord) run() {
	defer close(c.done)
	res, err := c.execute()
	c.mu.Lock()
	r := c.rec
	r.Elapsed += time.Since(c.begun)
	r.Ended = time.Now().UTC()
	switch {
	case err == nil:
		r.State, r.Result = Done, res.String()
		c.result = res
	case errors.Is(context.Cause(c.ctx), ErrCancelled):
		r.State, err = Cancelled, fmt.Errorf("job %s: %w", c.id, ErrCancelled)
	case c.m.ctx.Err() != nil:
		// The node is closing: the job stays running on disk, to resume.
		r.State, err = Running, fmt.Errorf("job %s: the coordinator closed; it resumes when the node starts again", c.id)
	default:
		r.State = Failed
	}
	if err != nil {
		r.Error = err.Error()
		c.err = err
	}
	msg := fmt.Sprintf("job ended: %s %s", r.State, r.Error)
	if r.State == Running {
		msg = "coordinator closing: the job resumes when it starts again"
		r.Ended, r.Error = time.Time{}, ""
	}
	c.mu.Unlock()
	c.logf(nil, "", "%s", msg)
	c.mu.Lock()
	serr := c.m.save(r)
	c.mu.Unlock()
	if serr != nil {
		c.m.log.Warn("could not keep a job's end", "job", c.id, "err", serr)
	}
}

// save writes the job's record; the caller holds c.mu.
func (c *coord) saveLocked() error { return c.m.save(c.rec) }

// verifies says whether map task t is one of the share verified.
func (c *coord) verifies(t *task, det bool) bool {
	f := c.spec.VerifyFraction
	if !det || f <= 0 {
		return false
	}
	h := fnv.New32a()
	h.Write([]byte(c.id + "/" + t.Name))
	return float64(h.Sum32())/float64(1<<32) < f
}
