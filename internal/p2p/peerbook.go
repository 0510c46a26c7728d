package p2p

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/nubecloud/nube/internal/atomicfile"
)

// Peer book limits: a book is a cache of where peers were, so it keeps the
// most recently seen peers and a few addresses each, and a file larger than
// maxBookFile is not read at all.
const (
	maxBookPeers = 256
	maxBookAddrs = 16
	maxBookFile  = 4 << 20
)

// peerBook remembers the addresses of peers we have been connected to, so
// that a restarted node can find its way back to the network without a
// bootstrap list. It is a cache: a damaged file is logged and ignored,
// never fatal.
type peerBook struct {
	path string
	mu   sync.Mutex
	m    map[peer.ID]bookEntry
	dirt bool
}

type bookEntry struct {
	Addrs    []string  `json:"addrs"`
	LastSeen time.Time `json:"last_seen"`
}

type bookFile struct {
	Version int                  `json:"version"`
	Peers   map[string]bookEntry `json:"peers"`
}

func openPeerBook(path string, log *slog.Logger) (*peerBook, error) {
	b := &peerBook{path: path, m: make(map[peer.ID]bookEntry)}
	if path == "" {
		return b, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("p2p: open peer book: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxBookFile+1))
	if err != nil {
		return nil, fmt.Errorf("p2p: read peer book %s: %w", path, err)
	}
	if err := b.load(data); err != nil {
		log.Warn("ignoring damaged peer book; known peers will be relearned", "path", path, "err", err)
		b.m = make(map[peer.ID]bookEntry)
	}
	return b, nil
}

func (b *peerBook) load(data []byte) error {
	if len(data) > maxBookFile {
		return fmt.Errorf("file larger than %d bytes", maxBookFile)
	}
	var f bookFile
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	for id, e := range f.Peers {
		p, err := peer.Decode(id)
		if err != nil {
			continue
		}
		if len(e.Addrs) > maxBookAddrs {
			e.Addrs = e.Addrs[:maxBookAddrs]
		}
		b.m[p] = e
	}
	b.trim()
	return nil
}

// saw records that p was connected at addrs now.
func (b *peerBook) saw(p peer.ID, addrs []ma.Multiaddr) {
	if len(addrs) == 0 {
		return
	}
	e := bookEntry{LastSeen: time.Now().UTC()}
	for _, a := range addrs {
		if len(e.Addrs) == maxBookAddrs {
			break
		}
		e.Addrs = append(e.Addrs, a.String())
	}
	b.mu.Lock()
	b.m[p] = e
	b.dirt = true
	b.trim()
	b.mu.Unlock()
}

// trim drops the least recently seen peers beyond maxBookPeers.
func (b *peerBook) trim() {
	if len(b.m) <= maxBookPeers {
		return
	}
	ids := make([]peer.ID, 0, len(b.m))
	for p := range b.m {
		ids = append(ids, p)
	}
	sort.Slice(ids, func(i, j int) bool { return b.m[ids[i]].LastSeen.After(b.m[ids[j]].LastSeen) })
	for _, p := range ids[maxBookPeers:] {
		delete(b.m, p)
	}
}

// list returns the known peers other than self, most recently seen first.
func (b *peerBook) list(self peer.ID) []peer.AddrInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]peer.AddrInfo, 0, len(b.m))
	for p, e := range b.m {
		if p == self {
			continue
		}
		ai := peer.AddrInfo{ID: p}
		for _, s := range e.Addrs {
			if a, err := ma.NewMultiaddr(s); err == nil {
				ai.Addrs = append(ai.Addrs, a)
			}
		}
		if len(ai.Addrs) > 0 {
			out = append(out, ai)
		}
	}
	sort.Slice(out, func(i, j int) bool { return b.m[out[i].ID].LastSeen.After(b.m[out[j].ID].LastSeen) })
	return out
}

// save writes the book if it changed since the last save.
func (b *peerBook) save() error {
	b.mu.Lock()
	if b.path == "" || !b.dirt {
		b.mu.Unlock()
		return nil
	}
	f := bookFile{Version: 1, Peers: make(map[string]bookEntry, len(b.m))}
	for p, e := range b.m {
		f.Peers[p.String()] = e
	}
	b.dirt = false
	b.mu.Unlock()
	data, err := json.MarshalIndent(f, "", "  ")
	if err == nil {
		err = atomicfile.Write(b.path, data, 0o600)
	}
	if err != nil {
		// Keep the book dirty, so that the next save tries again.
		b.mu.Lock()
		b.dirt = true
		b.mu.Unlock()
	}
	return err
}
