package service

import (
	"context"
	"fmt"
	"strconv"
)

// Judged returns p whose priced runs on other nodes wait for the
// caller's word before their runner settles them: Judge pays one or gives
// its reserve back, and a run never judged is given back when its
// reserve expires. It is for a caller that runs the same work on several
// nodes and pays only the run it keeps, such as a job's backup copy of a
// slow task. Each run also comes with its runner's signed proof
// (Result.Proof).
func (p *Pipeline) Judged() *Pipeline {
	q := *p
	q.verdict = true
	return &q
}

// Judge tells the node that ran r, a run of a Judged pipeline, whether
// it is paid. A run on this node, or one not priced, needs no word and
// Judge does nothing. A runner that has not yet finished the run when
// told it is not paid keeps its reserve until the reserve expires, and
// is not paid then either. A Result rebuilt from the Peer and Call of
// one kept aside (a caller started again) is judged as the run was.
func (p *Pipeline) Judge(ctx context.Context, r Result, pay bool) error {
	id := r.id
	if id == 0 && r.Call != "" {
		id, _ = strconv.ParseUint(r.Call, 16, 64)
	}
	if r.Peer == "" || id == 0 || r.Peer == p.m.self {
		return nil
	}
	if _, err := verdictFn.At(p.m.cfg.Remote, r.Peer).Call(ctx, verdictReq{Call: id, Pay: pay}); err != nil {
		return fmt.Errorf("tell %s whether %s is paid: %w", r.Peer, r.Call, err)
	}
	return nil
}

// Tamper makes this node change the output of every run it does from now
// on (nil: stop): a liar on purpose, for the tests of callers that must
// catch one (Verify, a job's verified tasks). A node never calls it on
// itself.
func (m *Manager) Tamper(f func([]byte) []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tamper = f
}
