// Package identity keeps the ed25519 keys that name a node and its user.
//
// A node has its own key: its libp2p peer ID is derived from it, so peers
// recognise it across restarts. The person running the node has a user key:
// data, grants and credit belong to users, and later layers sign with it.
// Both live in the node's data dir as PKCS#8 PEM files with mode 0600, so
// standard tools (openssl pkey) can read them.
//
// A key file that exists but cannot be read or parsed is an error, never a
// reason to make a new key: that would silently change who the node is.
package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/atomicfile"
)

// ErrBadKeyFile reports a key file that exists but does not hold a usable
// ed25519 private key. The file is left untouched.
var ErrBadKeyFile = errors.New("bad key file")

// maxKeyFile caps how much of a key file is read: a PEM ed25519 key is
// about 120 bytes.
const maxKeyFile = 16 << 10

const pemType = "PRIVATE KEY"

// Generate returns a new random ed25519 key.
func Generate() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic("identity: crypto/rand failed: " + err.Error()) // cannot happen on supported platforms
	}
	return k
}

// LoadOrCreate returns the key in the file at path, creating the file with a
// new key (mode 0600) if it does not exist. created reports whether it did.
// A file that exists but cannot be read or parsed returns an error wrapping
// ErrBadKeyFile (or the read error) and is never replaced.
func LoadOrCreate(path string) (key ed25519.PrivateKey, created bool, err error) {
	key, err = Load(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key = Generate()
	if err := Save(path, key); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// Load reads an ed25519 key from a PKCS#8 PEM file. A missing file returns
// an error wrapping fs.ErrNotExist.
func Load(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrBadKeyFile, path, maxKeyFile)
	}
	return Parse(data, path)
}

// Parse decodes a PKCS#8 PEM ed25519 private key. name is used in errors.
func Parse(data []byte, name string) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: %s is not a PEM file", ErrBadKeyFile, name)
	}
	if block.Type != pemType {
		return nil, fmt.Errorf("%w: %s holds a %q block, want %q", ErrBadKeyFile, name, block.Type, pemType)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadKeyFile, name, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s holds a %T, want an ed25519 key", ErrBadKeyFile, name, k)
	}
	return ek, nil
}

// Save writes key to path as PKCS#8 PEM with mode 0600. It writes a
// temporary file, syncs it and renames it into place, so a crash never
// leaves a half-written key; it refuses to overwrite an existing file.
func Save(path string, key ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der})
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("write key %s: %w", path, fs.ErrExist)
	}
	return atomicfile.Write(path, data, 0o600)
}

// LibP2P converts an ed25519 key to the libp2p form a host is built from.
func LibP2P(key ed25519.PrivateKey) (crypto.PrivKey, error) {
	k, err := crypto.UnmarshalEd25519PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("convert key: %w", err)
	}
	return k, nil
}

// ID returns the peer-ID form of a public key: the node's peer ID for a node
// key, and the user's ID for a user key.
func ID(pub ed25519.PublicKey) (peer.ID, error) {
	k, err := crypto.UnmarshalEd25519PublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("convert public key: %w", err)
	}
	return peer.IDFromPublicKey(k)
}
