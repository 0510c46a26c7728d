package names

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nubecloud/nube/internal/atomicfile"
)

// bookFile keeps, in Config.Dir, what each key last published.
const bookFile = "published.json"

// maxBookFile caps published.json: a few hundred bytes per key.
const maxBookFile = 4 << 20

// entry is what a key last published: enough to sign it again.
type entry struct {
	Key      string        `json:"key"`
	Value    string        `json:"value"`
	Sequence uint64        `json:"sequence"`
	Lifetime time.Duration `json:"lifetime"`
	TTL      time.Duration `json:"ttl"`
}

// book is the published entries by key, kept in dir/published.json
// (memory only when dir is "").
type book struct {
	path string
	mu   sync.Mutex
	m    map[string]entry
}

func openBook(dir string) (*book, error) {
	b := &book{m: map[string]entry{}}
	if dir == "" {
		return b, nil
	}
	b.path = filepath.Join(dir, bookFile)
	f, err := os.Open(b.path)
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("names: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > maxBookFile {
		return nil, fmt.Errorf("names: %s is larger than %d bytes", b.path, maxBookFile)
	}
	if err := json.NewDecoder(f).Decode(&b.m); err != nil {
		return nil, fmt.Errorf("names: %s: %w", b.path, err)
	}
	return b, nil
}

func (b *book) get(key string) (entry, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.m[key]
	return e, ok
}

func (b *book) all() []entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]entry, 0, len(b.m))
	for _, e := range b.m {
		out = append(out, e)
	}
	return out
}

func (b *book) put(e entry) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[e.Key] = e
	return b.saveLocked()
}

func (b *book) forget(key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[key]; !ok {
		return nil
	}
	delete(b.m, key)
	return b.saveLocked()
}

func (b *book) saveLocked() error {
	if b.path == "" {
		return nil
	}
	data, err := json.Marshal(b.m)
	if err != nil {
		return err
	}
	return atomicfile.Write(b.path, data, 0o600)
}

// republisher signs every booked record again each RepublishInterval
// (the first a minute after start, or sooner if the interval is shorter;
// a minute after a store that found no DHT peers), until Close.
func (m *Manager) republisher() {
	defer m.wg.Done()
	t := time.NewTimer(min(time.Minute, m.cfg.RepublishInterval))
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			m.lonely.Store(false)
			m.Republish(m.ctx)
			if m.lonely.Load() {
				t.Reset(min(time.Minute, m.cfg.RepublishInterval))
			} else {
				t.Reset(m.cfg.RepublishInterval)
			}
		}
	}
}

// Republish signs every record this node published again, with the next
// sequence and a fresh validity, and stores it. The republisher calls it
// every Config.RepublishInterval; a caller may call it at any time. It
// returns how many it stored.
func (m *Manager) Republish(ctx context.Context) int {
	done := 0
	for _, e := range m.book.all() {
		if ctx.Err() != nil {
			break
		}
		if err := m.republish(ctx, e.Key); err != nil {
			m.log.Warn("republish failed; trying again at the next", "key", e.Key, "err", err)
			continue
		}
		done++
	}
	return done
}

func (m *Manager) republish(ctx context.Context, key string) error {
	sk, err := m.keys.signer(key)
	if err != nil {
		return err
	}
	m.pubMu.Lock()
	defer m.pubMu.Unlock()
	e, ok := m.book.get(key)
	if !ok {
		return nil // removed meanwhile
	}
	e.Sequence++
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err = m.publish(ctx, sk, e)
	return err
}
