package topic

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// A sealed topic's bodies are sealed with XChaCha20-Poly1305 (the AEAD
// the space seals its values with) under a key derived from the topic
// space's data key of the current epoch (space.DeriveKey with
// bodyPurpose). A reader of the space derives the same key; a revocation
// rotates the space's data key, so a revoked subscriber cannot derive the
// keys of the epochs after, and reads nothing published under them.

// bodyPurpose is the purpose a topic key is derived for.
const bodyPurpose = "nube topic body v1"

// bodyAD binds a sealed body to its topic.
func bodyAD(topicID string) []byte { return []byte("nube topic body v1\n" + topicID) }

// sealBody seals data under key for topicID: a random nonce, then the
// ciphertext.
func sealBody(key []byte, topicID string, data []byte) []byte {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		panic(err) // a derived key is always 32 bytes: a bug, not input
	}
	out := make([]byte, a.NonceSize(), a.NonceSize()+len(data)+a.Overhead())
	rand.Read(out)
	return a.Seal(out, out, data, bodyAD(topicID))
}

// openBody opens what sealBody sealed.
func openBody(key []byte, topicID string, box []byte) ([]byte, error) {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	if len(box) < a.NonceSize()+a.Overhead() {
		return nil, fmt.Errorf("%w: a sealed body of %d bytes is too short", ErrBadMessage, len(box))
	}
	out, err := a.Open(nil, box[:a.NonceSize()], box[a.NonceSize():], bodyAD(topicID))
	if err != nil {
		return nil, fmt.Errorf("%w: the body does not open under the topic key of epoch", ErrBadMessage)
	}
	return out, nil
}

// topicKeys caches a subscriber's derived keys per topic and epoch (a
// key of an epoch never changes).
type topicKeys struct {
	mu   sync.Mutex
	keys map[string]map[uint64][]byte
}

// maxKeyEpochs bounds the epochs cached per topic.
const maxKeyEpochs = 64

func (k *topicKeys) get(id string, epoch uint64) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys[id][epoch]
}

func (k *topicKeys) put(id string, epoch uint64, key []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys == nil {
		k.keys = map[string]map[uint64][]byte{}
	}
	m := k.keys[id]
	if m == nil || len(m) >= maxKeyEpochs {
		m = map[uint64][]byte{}
		k.keys[id] = m
	}
	m[epoch] = key
}

// unseal opens a message body (sealed topics) for a subscriber: the key
// of the message's epoch, which a user that is no longer a reader of the
// topic's space cannot derive (ErrNotAuthorised).
func (t *Topic) unseal(ctx context.Context, r *record) ([]byte, error) {
	keys := &t.m.live.keys
	key := keys.get(t.ID(), r.Epoch)
	if key == nil {
		var err error
		if key, err = t.sp.DeriveKey(ctx, bodyPurpose, r.Epoch); err != nil {
			return nil, fmt.Errorf("topic %s: cannot open a message of key epoch %d: %w", t.ID(), r.Epoch, mapSpaceErr(err))
		}
		keys.put(t.ID(), r.Epoch, key)
	}
	return openBody(key, t.ID(), r.Data)
}
