package space

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"testing"

	"github.com/nubecloud/nube/internal/identity"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func seal(t *testing.T, key, plain []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(newSealer(key, bytes.NewReader(plain), 1<<30))
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(out)) != sealedSize(uint64(len(plain))) {
		t.Fatalf("sealed %d bytes into %d, sealedSize says %d", len(plain), len(out), sealedSize(uint64(len(plain))))
	}
	return out
}

func open(key, sealed []byte) ([]byte, error) {
	o, err := newOpener(key, bytes.NewReader(sealed), ^uint64(0))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(o)
}

func TestSealRoundTripsAndRefusesTampering(t *testing.T) {
	key := randomBytes(keySize)
	for _, n := range []int{0, 1, segmentSize - 1, segmentSize, segmentSize + 1, 3*segmentSize + 17} {
		plain := randomBytes(n)
		sealed := seal(t, key, plain)
		got, err := open(key, sealed)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: round trip gave %d bytes, %v", n, len(got), err)
		}
		if bytes.Contains(sealed, plain) && n > 16 {
			t.Fatalf("%d bytes: the plaintext shows in the ciphertext", n)
		}
		flipped := bytes.Clone(sealed)
		flipped[len(flipped)-1] ^= 1
		if _, err := open(key, flipped); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("%d bytes: a flipped bit opened: %v", n, err)
		}
		if _, err := open(randomBytes(keySize), sealed); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("%d bytes: another key opened it: %v", n, err)
		}
		if n >= 2*segmentSize {
			// Cut at a segment boundary: the last flag is missing.
			cut := sealed[:valueHeader+segmentSize+segmentOverhead]
			if _, err := open(key, cut); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("a value cut at a segment boundary opened: %v", err)
			}
			// Two segments swapped.
			sw := bytes.Clone(sealed)
			s0 := sw[valueHeader : valueHeader+segmentSize+segmentOverhead]
			s1 := sw[valueHeader+segmentSize+segmentOverhead : valueHeader+2*(segmentSize+segmentOverhead)]
			tmp := bytes.Clone(s0)
			copy(s0, s1)
			copy(s1, tmp)
			if _, err := open(key, sw); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("swapped segments opened: %v", err)
			}
		}
	}
}

func TestKeysWrapToTheUserKeyOnly(t *testing.T) {
	alice, bob := identity.Generate(), identity.Generate()
	aliceID, _ := identity.ID(alice.Public().(ed25519.PublicKey))
	kr := newKeyring()
	box, err := wrapKeys("o/s", aliceID, kr)
	if err != nil {
		t.Fatal(err)
	}
	got, err := unwrapKeys("o/s", alice, box)
	if err != nil || !bytes.Equal(got.Index, kr.Index) || !bytes.Equal(got.Data[0], kr.Data[0]) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := unwrapKeys("o/s", bob, box); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("another user unwrapped the keys: %v", err)
	}
	if _, err := unwrapKeys("o/other", alice, box); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("keys of one space opened as another's: %v", err)
	}
}
