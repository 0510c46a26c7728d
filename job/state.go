package job

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/atomicfile"
)

// task is one map or reduce task as the coordinator keeps it on disk.
type task struct {
	Name string `json:"name"`
	// A map task's split: a file (Path, "CID" or "CID/a/b", and Root,
	// the file's own CID, which its holders announce) or a space's
	// value, and the input's name.
	Path   string `json:"path,omitempty"`
	Root   string `json:"root,omitempty"`
	Offset int64  `json:"offset,omitempty"`
	Length int64  `json:"length,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Space  string `json:"space,omitempty"`
	Key    string `json:"key,omitempty"`
	Input  string `json:"input,omitempty"`
	// Partition is a reduce task's.
	Partition int `json:"partition,omitempty"`

	// Done is set once its output is kept: Node ran it, and Out is what
	// it gave (a map's R partition CIDs, "" for an empty one; a
	// reduce's output CID).
	Done bool     `json:"done,omitempty"`
	Node peer.ID  `json:"node,omitempty"`
	Out  []string `json:"out,omitempty"`
	// Failed are the nodes whose runs of it failed; none is sent it
	// again.
	Failed []peer.ID `json:"failed,omitempty"`
	// Verified is set once a verified task's runs were compared.
	Verified bool `json:"verified,omitempty"`
	// Pay is the winning run of a verified task while its pay waits for
	// the comparison: what a coordinator started again needs to judge it.
	Pay *deferredPay `json:"pay,omitempty"`
}

// deferredPay names a run whose runner waits for the word that it is
// paid.
type deferredPay struct {
	Node peer.ID `json:"node"`
	Call string  `json:"call"`
	Cost int64   `json:"cost"`
	Most int64   `json:"most"` // held in the job's reserve until it is judged
}

// record is a job as its coordinator keeps it on disk: enough to resume
// it with the tasks already done.
type record struct {
	ID            string         `json:"id"`
	Spec          Spec           `json:"spec"`
	State         State          `json:"state"`
	Started       time.Time      `json:"started"`
	Ended         time.Time      `json:"ended,omitzero"`
	Elapsed       time.Duration  `json:"elapsed"` // before the last start of the coordinator
	Result        string         `json:"result,omitempty"`
	Error         string         `json:"error,omitempty"`
	Planned       bool           `json:"planned,omitempty"`
	Maps          []*task        `json:"maps,omitempty"`
	Reduces       []*task        `json:"reduces,omitempty"`
	Spent         int64          `json:"spent,omitempty"`
	Failed        int            `json:"failed,omitempty"`
	BytesLocal    int64          `json:"bytes_local,omitempty"`
	BytesFetched  int64          `json:"bytes_fetched,omitempty"`
	Nodes         []peer.ID      `json:"nodes,omitempty"`
	Bad           []peer.ID      `json:"bad,omitempty"` // nodes that lied: given no more tasks
	Disagreements []Disagreement `json:"disagreements,omitempty"`
	Log           []LogLine      `json:"log,omitempty"`
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return time.Now().UTC().Format("20060102-150405-") + hex.EncodeToString(b[:4])
}

// checkID refuses an ID that is not one newID makes: it names a file.
func checkID(id string) error {
	if id == "" || len(id) > 64 || strings.ContainsAny(id, `/\.`) || strings.ContainsRune(id, 0) {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return nil
}

func (m *Manager) path(id string) string { return filepath.Join(m.cfg.Dir, id+".json") }

// save writes r to disk (nothing without a Dir).
func (m *Manager) save(r *record) error {
	if m.cfg.Dir == "" {
		return nil
	}
	return atomicfile.WriteJSON(m.path(r.ID), r, 0o600)
}

// maxRecordFile caps a job file read back: a job of a million tasks.
const maxRecordFile = 512 << 20

// load reads every job kept in Dir.
func (m *Manager) load() ([]*record, error) {
	if m.cfg.Dir == "" {
		return nil, nil
	}
	files, err := filepath.Glob(filepath.Join(m.cfg.Dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []*record
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil || st.Size() > maxRecordFile {
			m.log.Warn("job file left aside", "file", f, "err", err)
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		r := new(record)
		if err := json.Unmarshal(b, r); err != nil || checkID(r.ID) != nil || filepath.Base(f) != r.ID+".json" {
			m.log.Warn("job file does not read; left aside", "file", f, "err", err)
			continue
		}
		if err := r.check(); err != nil {
			m.log.Warn("job file does not read; left aside", "file", f, "err", err)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// check refuses a record read back whose sums would bend the budget's
// accounting: a negative Spent, or a deferred pay of a negative cost.
func (r *record) check() error {
	if r.Spent < 0 {
		return fmt.Errorf("job %s: spent %d", r.ID, r.Spent)
	}
	for _, t := range r.Maps {
		if d := t.Pay; d != nil && (d.Cost < 0 || d.Most < 0) {
			return fmt.Errorf("job %s: %s: a deferred pay of %d (at most %d)", r.ID, t.Name, d.Cost, d.Most)
		}
	}
	return nil
}
