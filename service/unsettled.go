package service

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/atomicfile"
	"github.com/nubecloud/nube/internal/wire"
)

// Unsettled runs survive a crash. A provider bills a run in a receipt and
// settles it in the background; until the ledger has taken it, the
// receipt is the only claim the provider has on the run's reserve. It is
// written to Dir/unsettled/ (one file per reserve, synced) before the
// settlement starts (in the background, as the settlement is: the output
// does not wait for the disk), and removed once it ends; a node that
// starts again settles whatever it finds there that has not expired.

// unsettledDir is the subdirectory of Config.Dir that keeps them.
const unsettledDir = "unsettled"

// maxUnsettled caps one file: a receipt is a few hundred bytes.
const maxUnsettled = 64 << 10

// unsettled is one file's content.
type unsettled struct {
	Payer   peer.ID `cbor:"1,keyasint"`
	Hold    []byte  `cbor:"2,keyasint"` // the reserve's ID
	Expires int64   `cbor:"3,keyasint"` // unix nanoseconds
	Receipt []byte  `cbor:"4,keyasint"`
}

// unsettledPath is where the receipt for the reserve id is kept; empty
// when the node keeps no data dir.
func (m *Manager) unsettledPath(id []byte) string {
	if m.cfg.Dir == "" {
		return ""
	}
	return filepath.Join(m.cfg.Dir, unsettledDir, hex.EncodeToString(id))
}

// keepUnsettled writes a receipt before its settlement starts.
func (m *Manager) keepUnsettled(user peer.ID, h Hold, receipt []byte) error {
	p := m.unsettledPath(h.ID)
	if p == "" {
		return nil
	}
	b, err := wire.Marshal(&unsettled{Payer: user, Hold: h.ID, Expires: h.Expires.UnixNano(), Receipt: receipt})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(p, b, 0o600)
}

// dropUnsettled forgets a receipt whose settlement ended.
func (m *Manager) dropUnsettled(id []byte) {
	if p := m.unsettledPath(id); p != "" {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("could not remove a settled receipt", "file", p, "err", err)
		}
	}
}

// resumeUnsettled settles again what a previous run of the node left
// unsettled, and removes what expired or does not read.
func (m *Manager) resumeUnsettled() {
	if m.cfg.Dir == "" || m.cfg.Payments == nil {
		return
	}
	dir := filepath.Join(m.cfg.Dir, unsettledDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("could not read the unsettled runs", "dir", dir, "err", err)
		}
		return
	}
	now := time.Now()
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		u, err := readUnsettled(p)
		switch {
		case err != nil:
			m.log.Warn("dropping an unsettled run that does not read", "file", p, "err", err)
			os.Remove(p)
		case !time.Unix(0, u.Expires).After(now):
			m.log.Warn("a run left unsettled by a crash expired before the node came back: it goes unpaid", "payer", u.Payer)
			os.Remove(p)
		default:
			m.log.Info("settling a run left unsettled", "payer", u.Payer)
			m.payers.resume(u.Payer)
			m.collect(u.Payer, Hold{ID: u.Hold, Payer: u.Payer, Expires: time.Unix(0, u.Expires)}, u.Receipt)
		}
	}
}

func readUnsettled(p string) (unsettled, error) {
	var u unsettled
	f, err := os.Open(p)
	if err != nil {
		return u, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return u, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxUnsettled {
		return u, fmt.Errorf("not a receipt file (%d bytes, mode %v)", fi.Size(), fi.Mode())
	}
	b := make([]byte, fi.Size())
	if _, err := f.Read(b); err != nil {
		return u, err
	}
	if err := wire.Unmarshal(b, &u); err != nil {
		return u, err
	}
	if len(u.Hold) == 0 || len(u.Receipt) == 0 {
		return u, errors.New("a receipt file without its reserve or receipt")
	}
	return u, nil
}
