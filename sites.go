package nube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/atomicfile"
	"github.com/nubecloud/nube/names"
)

// A space published as a site: a UnixFS snapshot of the space's keys and
// values (each key a path, "a/b.html" a file b.html in a directory a),
// pinned on this node, and an IPNS name pointed at it. While the node
// runs, a change to the space makes a new snapshot and points the name at
// it, Config.SiteDebounce after the last change of a burst. The snapshot is made
// from the values as the owner reads them: it is public, whatever the
// space's own sealing; publish only a space meant for everyone.

// DefaultSiteDebounce is Config.SiteDebounce's default.
const DefaultSiteDebounce = 2 * time.Second

// sitesFile keeps, in the names dir, the spaces published as sites.
const sitesFile = "sites.json"

// SitePublished is a space's snapshot and the name that points at it.
type SitePublished struct {
	Space string `json:"space"`
	Root  string `json:"root"` // the snapshot's CID
	names.Published
}

type siteEntry struct {
	Key  string `json:"key"`
	Root string `json:"root"`
}

// sites keeps the spaces published as sites, and republishes each after
// a change, until close.
type sites struct {
	n        *Node
	log      *slog.Logger
	path     string // "" in memory
	debounce time.Duration

	mu      sync.Mutex
	m       map[string]siteEntry // by space name
	watched map[string]bool
	pubMu   sync.Mutex // one snapshot at a time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func openSites(n *Node, dir string) (*sites, error) {
	s := &sites{n: n, log: n.log.With("layer", "sites"), m: map[string]siteEntry{}, watched: map[string]bool{}, debounce: n.cfg.SiteDebounce}
	if s.debounce <= 0 {
		s.debounce = DefaultSiteDebounce
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if dir == "" {
		return s, nil
	}
	s.path = filepath.Join(dir, sitesFile)
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &s.m); err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	for space := range s.m {
		s.watch(space)
	}
	return s, nil
}

func (s *sites) close() {
	s.cancel()
	s.wg.Wait()
}

func (s *sites) saveLocked() error {
	if s.path == "" {
		return nil
	}
	b, err := json.Marshal(s.m)
	if err != nil {
		return err
	}
	return atomicfile.Write(s.path, b, 0o600)
}

// publish snapshots the space and points key's name at the snapshot.
func (s *sites) publish(ctx context.Context, space, key string) (SitePublished, error) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if key == "" {
		key = names.Self
	}
	root, err := s.snapshot(ctx, space)
	if err != nil {
		return SitePublished{}, err
	}
	p, err := s.n.names.Publish(ctx, key, root.String(), names.PublishOptions{})
	if err != nil {
		return SitePublished{}, err
	}
	s.mu.Lock()
	old := s.m[space]
	s.m[space] = siteEntry{Key: key, Root: root.String()}
	err = s.saveLocked()
	s.mu.Unlock()
	if err != nil {
		return SitePublished{}, err
	}
	if old.Root != "" && old.Root != root.String() {
		if c, err := cid.Decode(old.Root); err == nil {
			if err := s.n.content.Unpin(ctx, c); err != nil {
				s.log.Debug("unpin the last snapshot", "space", space, "cid", c, "err", err)
			}
		}
	}
	s.watch(space)
	return SitePublished{Space: space, Root: root.String(), Published: p}, nil
}

// snapshot stores the space's keys and values as a UnixFS directory,
// pinned, and returns its CID. A key that cannot be a path (an empty
// segment, "." or "..") fails with content.ErrBadName.
func (s *sites) snapshot(ctx context.Context, name string) (cid.Cid, error) {
	sp, err := s.n.spaces.Open(s.n.userID, name)
	if err != nil {
		return cid.Undef, err
	}
	items, err := sp.List(ctx, "")
	if err != nil {
		return cid.Undef, fmt.Errorf("space %s: %w", name, err)
	}
	for _, it := range items {
		for _, part := range strings.Split(it.Key, "/") {
			if err := content.CheckName(part); err != nil {
				return cid.Undef, fmt.Errorf("space %s: key %q is not a path of a site: %w", name, it.Key, err)
			}
		}
	}
	return s.n.content.AddTree(ctx, func(put func(string, io.Reader) error, _ func(string) error, _ func(string, string) error) error {
		for _, it := range items {
			v, err := sp.Get(ctx, it.Key)
			if err != nil {
				return fmt.Errorf("space %s: get %q: %w", name, it.Key, err)
			}
			err = put(it.Key, v)
			v.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}, content.AddOptions{Name: "site:" + name})
}

// watch follows the space's changes, if it is not followed yet, and
// publishes it again s.debounce after the last of a burst.
func (s *sites) watch(space string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watched[space] || s.ctx.Err() != nil {
		return
	}
	s.watched[space] = true
	changed := make(chan struct{}, 1)
	done := make(chan struct{}) // the follower ended
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		defer close(done)
		defer func() {
			s.mu.Lock()
			delete(s.watched, space)
			s.mu.Unlock()
		}()
		sp, err := s.n.spaces.Open(s.n.userID, space)
		if err != nil {
			s.log.Warn("a published space cannot be followed", "space", space, "err", err)
			return
		}
		for _, err := range sp.Watch(s.ctx) {
			if err != nil {
				s.log.Warn("following a published space ended", "space", space, "err", err)
				return
			}
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}()
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(time.Hour)
		t.Stop()
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-done:
				return
			case <-changed:
				t.Reset(s.debounce)
			case <-t.C:
				s.mu.Lock()
				e, ok := s.m[space]
				s.mu.Unlock()
				if !ok {
					continue
				}
				ctx, cancel := context.WithTimeout(s.ctx, 2*time.Minute)
				if _, err := s.publish(ctx, space, e.Key); err != nil {
					s.log.Warn("republishing a space after a change failed; the next change tries again", "space", space, "err", err)
				}
				cancel()
			}
		}
	}()
}
