package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/service"
)

// Services is what a job asks of the service layer; *service.Manager
// provides it.
type Services interface {
	Service(ref string) *service.Pipeline
	Resolve(ctx context.Context, ref string) (*service.Descriptor, error)
}

// Content is what a job asks of the content layer; *content.Service
// provides it.
type Content interface {
	Add(ctx context.Context, r io.Reader, opt content.AddOptions) (cid.Cid, error)
	AddTree(ctx context.Context, entries content.Entries, opt content.AddOptions) (cid.Cid, error)
	Get(ctx context.Context, p string) (content.File, error)
	Stat(ctx context.Context, p string) (content.Entry, error)
	List(ctx context.Context, p string) ([]content.Entry, error)
	Has(ctx context.Context, c cid.Cid) (bool, error)
	Pins(ctx context.Context) ([]content.Pin, error)
	// Fetch brings a DAG into the store from whichever nodes hold it.
	Fetch(ctx context.Context, root cid.Cid, progress func(content.FetchProgress)) error
}

// Config configures a Manager. Host, Remote, Services and Content are
// required.
type Config struct {
	Host     host.Host
	Remote   *remote.Endpoint
	Services Services
	Content  Content
	// Keys, if set, lists a space's keys under a prefix (OWNER/NAME),
	// for a job whose input is a space; nil: such jobs fail with
	// ErrBadSpec.
	Keys func(ctx context.Context, space, prefix string) ([]string, error)
	// Locate, if set, finds nodes that hold a CID or a space beyond
	// those this node is connected to (the DHT, a space's holders).
	Locate func(ctx context.Context, ref string) ([]peer.ID, error)
	// Dir keeps the coordinator's jobs (one file each), so that they
	// resume after a restart. Empty: in memory, lost at Close.
	Dir string
	// Logger; nil: silent.
	Logger *slog.Logger
	// MayAsk, if set, says whether a node may ask this one which blocks
	// it holds (so which of a job's splits it could run near): one this
	// node would run no code for learns nothing. nil: any node may.
	MayAsk func(p peer.ID) bool
}

// Validate names the first required field missing.
func (c Config) Validate() error {
	switch {
	case c.Host == nil:
		return errors.New("job: Config.Host is required")
	case c.Remote == nil:
		return errors.New("job: Config.Remote is required")
	case c.Services == nil:
		return errors.New("job: Config.Services is required")
	case c.Content == nil:
		return errors.New("job: Config.Content is required")
	}
	return nil
}

// Manager runs the jobs this node coordinates, and answers other
// coordinators' questions about what this node holds.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	self peer.ID
	stop func()

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	jobs map[string]*coord
}

// New starts a Manager and resumes the jobs left running in cfg.Dir.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{cfg: cfg, log: log.With("layer", "job"), self: cfg.Host.ID(), jobs: map[string]*coord{}}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	stopHas := remote.Handle(cfg.Remote, hasFn, m.serveHas)
	stopFetch := remote.Handle(cfg.Remote, fetchFn, m.serveFetch)
	m.stop = func() { stopHas(); stopFetch() }
	if err := m.resume(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Close stops the jobs this node coordinates (their state stays on disk:
// a Manager started on the same Dir resumes them) and stops answering.
// A second call does nothing.
func (m *Manager) Close() error {
	m.cancel()
	m.wg.Wait()
	if m.stop != nil {
		m.stop()
		m.stop = nil
	}
	return nil
}

// Run checks spec, starts the job with this node as its coordinator and
// returns it at once; Job.Wait gives its result. A spec that cannot run
// fails here with ErrBadSpec; everything else (an input nobody holds, a
// budget spent) fails the job.
func (m *Manager) Run(ctx context.Context, spec Spec) (*Job, error) {
	if err := m.ctx.Err(); err != nil {
		return nil, fmt.Errorf("job: the node is closing: %w", err)
	}
	spec, err := spec.withDefaults()
	if err != nil {
		return nil, err
	}
	c, err := m.newCoord(ctx, spec)
	if err != nil {
		return nil, err
	}
	m.start(c)
	return &Job{c: c}, nil
}

// Get returns the job id names.
func (m *Manager) Get(id string) (*Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.jobs[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return &Job{c: c}, nil
}

// Status returns the status of job id.
func (m *Manager) Status(id string) (Status, error) {
	j, err := m.Get(id)
	if err != nil {
		return Status{}, err
	}
	return j.Status(), nil
}

// List returns the status of every job this node coordinates (running
// or kept on disk), newest first.
func (m *Manager) List() []Status {
	m.mu.Lock()
	cs := make([]*coord, 0, len(m.jobs))
	for _, c := range m.jobs {
		cs = append(cs, c)
	}
	m.mu.Unlock()
	out := make([]Status, len(cs))
	for i, c := range cs {
		out[i] = c.status()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.After(out[j].Started) })
	return out
}

// Cancel stops job id (Job.Cancel).
func (m *Manager) Cancel(id string) error {
	j, err := m.Get(id)
	if err != nil {
		return err
	}
	j.Cancel()
	return nil
}

// Logs returns job id's log, oldest first.
func (m *Manager) Logs(id string) ([]LogLine, error) {
	j, err := m.Get(id)
	if err != nil {
		return nil, err
	}
	return j.Logs(), nil
}
