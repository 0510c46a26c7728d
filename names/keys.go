package names

import (
	stdcrypto "crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/ipfs/boxo/ipns"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	pb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
)

// Self is the name of the user key, the default key of Publish.
const Self = "self"

// maxKeyName bounds a key's name.
const maxKeyName = 64

// Key is one key that names can be published under.
type Key struct {
	// Name is the key's local name: Self for the user key.
	Name string `json:"name"`
	// ID is the IPNS name the key publishes under (a libp2p-key CID in
	// base36, as kubo prints it).
	ID string `json:"id"`
}

// CheckKeyName returns nil if s can name a key: 1 to 64 of the letters,
// digits, '.', '_' and '-', not starting with '.'.
func CheckKeyName(s string) error {
	if s == "" || len(s) > maxKeyName || s[0] == '.' {
		return fmt.Errorf("%w: key name %q: want 1 to %d letters, digits, '.', '_' or '-', not starting with '.'", ErrBadName, s, maxKeyName)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%w: key name %q holds %q", ErrBadName, s, r)
		}
	}
	return nil
}

// keyring keeps the keys: the user's signer, and the others as one PEM
// file each in dir (in memory when dir is "").
type keyring struct {
	user stdcrypto.Signer
	dir  string

	mu  sync.Mutex
	mem map[string]ed25519.PrivateKey // dir == "" only
}

func (k *keyring) path(name string) string { return filepath.Join(k.dir, name+".key") }

// signer returns the key named name as a libp2p private key ("" and Self:
// the user's, which may refuse to sign on a node without it).
func (k *keyring) signer(name string) (ic.PrivKey, error) {
	if name == "" || name == Self {
		pub, ok := k.user.Public().(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("user key is a %T, not ed25519", k.user.Public())
		}
		lp, err := ic.UnmarshalEd25519PublicKey(pub)
		if err != nil {
			return nil, err
		}
		return signerKey{s: k.user, pub: lp}, nil
	}
	if err := CheckKeyName(name); err != nil {
		return nil, err
	}
	priv, err := k.load(name)
	if err != nil {
		return nil, err
	}
	return identity.LibP2P(priv)
}

func (k *keyring) load(name string) (ed25519.PrivateKey, error) {
	if k.dir == "" {
		k.mu.Lock()
		defer k.mu.Unlock()
		if priv, ok := k.mem[name]; ok {
			return priv, nil
		}
		return nil, fmt.Errorf("%w: no key %q", ErrNotFound, name)
	}
	priv, err := identity.Load(k.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no key %q", ErrNotFound, name)
	}
	return priv, err
}

// gen makes the key name.
func (k *keyring) gen(name string) (Key, error) {
	if name == Self {
		return Key{}, fmt.Errorf("%w: %q is the user key", ErrExists, Self)
	}
	if err := CheckKeyName(name); err != nil {
		return Key{}, err
	}
	priv := identity.Generate()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dir == "" {
		if _, ok := k.mem[name]; ok {
			return Key{}, fmt.Errorf("%w: %q", ErrExists, name)
		}
		if k.mem == nil {
			k.mem = map[string]ed25519.PrivateKey{}
		}
		k.mem[name] = priv
	} else if err := identity.Save(k.path(name), priv); errors.Is(err, fs.ErrExist) {
		return Key{}, fmt.Errorf("%w: %q", ErrExists, name)
	} else if err != nil {
		return Key{}, err
	}
	return keyOf(name, priv.Public().(ed25519.PublicKey))
}

// remove deletes the key name; the user key cannot be removed.
func (k *keyring) remove(name string) error {
	if name == Self {
		return fmt.Errorf("%w: %q is the user key, which stays", ErrBadName, Self)
	}
	if err := CheckKeyName(name); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dir == "" {
		if _, ok := k.mem[name]; !ok {
			return fmt.Errorf("%w: no key %q", ErrNotFound, name)
		}
		delete(k.mem, name)
		return nil
	}
	err := os.Remove(k.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: no key %q", ErrNotFound, name)
	}
	return err
}

// list returns the user key then the others by name.
func (k *keyring) list() ([]Key, error) {
	self, err := keyOf(Self, k.user.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	var names []string
	k.mu.Lock()
	if k.dir == "" {
		for n := range k.mem {
			names = append(names, n)
		}
	} else {
		ents, err := os.ReadDir(k.dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			k.mu.Unlock()
			return nil, err
		}
		for _, e := range ents {
			if n, ok := cutSuffix(e.Name(), ".key"); ok && CheckKeyName(n) == nil && e.Type().IsRegular() {
				names = append(names, n)
			}
		}
	}
	k.mu.Unlock()
	slices.Sort(names)
	out := []Key{self}
	for _, n := range names {
		priv, err := k.load(n)
		if err != nil {
			return nil, err
		}
		key, err := keyOf(n, priv.Public().(ed25519.PublicKey))
		if err != nil {
			return nil, err
		}
		out = append(out, key)
	}
	return out, nil
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) > len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return "", false
}

func keyOf(name string, pub ed25519.PublicKey) (Key, error) {
	id, err := identity.ID(pub)
	if err != nil {
		return Key{}, err
	}
	return Key{Name: name, ID: ipns.NameFromPeer(id).String()}, nil
}

// signerKey is a libp2p private key that signs through a crypto.Signer,
// so the user key is used where it is kept (and a node that holds only
// the user's cert refuses, with the facade's error) and never copied.
type signerKey struct {
	s   stdcrypto.Signer
	pub ic.PubKey
}

func (k signerKey) Sign(msg []byte) ([]byte, error) { return k.s.Sign(nil, msg, stdcrypto.Hash(0)) }
func (k signerKey) GetPublic() ic.PubKey            { return k.pub }
func (k signerKey) Type() pb.KeyType                { return pb.KeyType_Ed25519 }
func (k signerKey) Raw() ([]byte, error) {
	return nil, errors.New("the user key is not handed out")
}
func (k signerKey) Equals(o ic.Key) bool {
	if o, ok := o.(signerKey); ok {
		return k.pub.Equals(o.pub)
	}
	return false
}

// idOf returns the peer ID a key signs for.
func idOf(sk ic.PrivKey) (peer.ID, error) { return peer.IDFromPublicKey(sk.GetPublic()) }
