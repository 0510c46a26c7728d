package space

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	record "github.com/libp2p/go-libp2p-record"
)

// A space's newest head is also kept in the DHT, as a value under
// HeadKey(id): nodes that hold nothing of the space store it, so a reader
// given only OWNER/NAME still resolves the last head when the home and
// every holder are off, and reads whatever blocks some node still
// provides. The head is already the owner's signed word, so the record is
// the head itself: the DHT's peers check it with HeadValidator (the
// owner's signature, the space the key names) and keep the highest
// sequence number, and a reader still refuses a head older than one it
// saw.

// HeadNamespace is the DHT namespace of spaces' heads: a node's DHT must
// validate it with HeadValidator (the facade registers it).
const HeadNamespace = "nube-space"

// HeadKey is the DHT key under which the newest head of the space id
// (OWNER/NAME) is kept.
func HeadKey(id string) string { return "/" + HeadNamespace + "/" + id }

// DefaultHeadRepublish is how often a home and each holder store the
// newest head they keep in the DHT again, well inside the 36 hours a DHT
// peer keeps a value.
const DefaultHeadRepublish = 6 * time.Hour

// MaxDHTHeadSize is the largest head the DHT keeps (HeadValidator
// refuses larger ones): DHT peers keep values for free for 36 hours, so
// a value may cost them little more than an IPNS record. A head with
// every one of MaxGrants grants a reader is about 49 KB, so nearly every
// head fits; a larger one (many readers through many key rotations) is
// found only through the nodes that keep the space.
const MaxDHTHeadSize = 64 << 10

// HeadValidator is the DHT's record.Validator for HeadNamespace: a value
// is valid if it is a head, at most MaxDHTHeadSize bytes, of the space its
// key names, signed by the space's owner; of several, the one with the
// highest sequence number is best.
type HeadValidator struct{}

var _ record.Validator = HeadValidator{}

// Validate checks value as the head of the space key names.
func (HeadValidator) Validate(key string, value []byte) error {
	_, err := headOfKey(key, value)
	return err
}

// Select returns the index of the newest head among values (the first of
// equals); values that do not validate are never chosen.
func (HeadValidator) Select(key string, values [][]byte) (int, error) {
	best, bestSeq := -1, uint64(0)
	for i, v := range values {
		h, err := headOfKey(key, v)
		if err != nil {
			continue
		}
		if best < 0 || h.Seq > bestSeq {
			best, bestSeq = i, h.Seq
		}
	}
	if best < 0 {
		return 0, fmt.Errorf("%w: no valid head among %d values", ErrBadHead, len(values))
	}
	return best, nil
}

// headOfKey decodes value as the head of the space the DHT key names.
func headOfKey(key string, value []byte) (*head, error) {
	id, ok := strings.CutPrefix(key, "/"+HeadNamespace+"/")
	if !ok {
		return nil, fmt.Errorf("%w: key %q is not in namespace %s", ErrBadHead, key, HeadNamespace)
	}
	if _, _, err := SplitID(id); err != nil {
		return nil, err
	}
	h, _, err := decodeHeadUpTo(value, id, MaxDHTHeadSize)
	return h, err
}

// storeHead has the DHT keep the signed head b of space id, in the
// background: the latest asked for each space is stored, one store at a
// time, so a burst of writes costs one DHT put, not one each.
func (m *Manager) storeHead(id string, b []byte) {
	if m.cfg.Values == nil {
		return
	}
	if len(b) > MaxDHTHeadSize {
		// The DHT's peers would refuse it; readers find it through the
		// nodes that keep the space.
		m.log.Debug("a head too large for the DHT is not stored there", "space", id, "bytes", len(b), "limit", MaxDHTHeadSize)
		return
	}
	m.dhtMu.Lock()
	m.dhtTodo[id] = b
	m.dhtMu.Unlock()
	select {
	case m.dhtKick <- struct{}{}:
	default:
	}
}

// storeHeads runs until Close, storing the heads storeHead was given.
func (m *Manager) storeHeads() {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.dhtKick:
		}
		for {
			m.dhtMu.Lock()
			var id string
			var b []byte
			for id, b = range m.dhtTodo {
				break
			}
			delete(m.dhtTodo, id)
			m.dhtMu.Unlock()
			if b == nil {
				break
			}
			ctx, cancel := context.WithTimeout(m.ctx, time.Minute)
			err := m.cfg.Values.PutValue(ctx, HeadKey(id), b)
			cancel()
			if err != nil && m.ctx.Err() == nil {
				m.log.Debug("could not store a head in the DHT; the next head or republish tries again", "space", id, "err", err)
			}
		}
	}
}

// republishHeads stores again in the DHT the newest head of each space
// this node is home of or holds.
func (m *Manager) republishHeads() {
	m.mu.Lock()
	var heads [][]byte
	var owned []*owned
	for _, o := range m.owned {
		owned = append(owned, o)
	}
	for _, h := range m.held {
		if s := h.currentSigned(); len(s.Body) > 0 {
			if b, err := marshal(s); err == nil {
				heads = append(heads, b)
			}
		}
	}
	m.mu.Unlock()
	for _, o := range owned {
		if _, s := o.current(); len(s.Body) > 0 {
			if b, err := marshal(s); err == nil {
				heads = append(heads, b)
			}
		}
	}
	for _, b := range heads {
		if h, _, err := decodeHead(b, ""); err == nil {
			m.storeHead(h.id(), b)
		}
	}
}

// headFromDHT asks the DHT for the newest head of space id; nil if it
// has none or there is no DHT.
func (m *Manager) headFromDHT(ctx context.Context, id string) []byte {
	if m.cfg.Values == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b, err := m.cfg.Values.GetValue(ctx, HeadKey(id))
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			m.log.Debug("no head of the space in the DHT", "space", id, "err", err)
		}
		return nil
	}
	return bytes.Clone(b)
}

// providerWait bounds the wait for one block of a space's tree from
// whatever node provides it, when no home or holder answers: a reader
// whose space nobody keeps any more hears so, rather than waiting on its
// caller's deadline.
const providerWait = 30 * time.Second

// boundedGetter gets each node within a bound.
type boundedGetter struct {
	next ipld.NodeGetter
	wait time.Duration
}

func (g boundedGetter) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, g.wait)
	defer cancel()
	n, err := g.next.Get(ctx, c)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("%w: no node provides block %s of the space: %w", ErrUnavailable, c, err)
	}
	return n, err
}

// GetMany is the next getter's, unbounded: the space's reads use Get.
func (g boundedGetter) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	return g.next.GetMany(ctx, cs)
}
