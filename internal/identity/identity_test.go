package identity

import (
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestLoadOrCreateKeepsKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "node.key")
	k1, created, err := LoadOrCreate(p)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate: created=%v err=%v", created, err)
	}
	k2, created, err := LoadOrCreate(p)
	if err != nil || created {
		t.Fatalf("second LoadOrCreate: created=%v err=%v", created, err)
	}
	if !k1.Equal(k2) {
		t.Fatal("key changed between loads")
	}
	if runtime.GOOS != "windows" {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
		}
	}
	id1, _ := ID(k1.Public().(ed25519.PublicKey))
	id2, _ := ID(k2.Public().(ed25519.PublicKey))
	if id1 != id2 || id1 == "" {
		t.Fatalf("IDs differ: %s %s", id1, id2)
	}
}

func TestCorruptKeyIsNotReplaced(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":   "not a key at all",
		"wrong pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		"bad der":   "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"empty":     "",
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "node.key")
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := LoadOrCreate(p)
			if !errors.Is(err, ErrBadKeyFile) {
				t.Fatalf("err = %v, want ErrBadKeyFile", err)
			}
			after, _ := os.ReadFile(p)
			if string(after) != content {
				t.Fatal("corrupt key file was modified")
			}
		})
	}
}

func TestSaveRefusesOverwrite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "user.key")
	if err := Save(p, Generate()); err != nil {
		t.Fatal(err)
	}
	if err := Save(p, Generate()); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Save = %v, want fs.ErrExist", err)
	}
}

func TestUnreadableKeyIsAnError(t *testing.T) {
	if runtime.GOOS == "windows" || os.Getuid() == 0 {
		t.Skip("permission bits do not stop root (or Windows) from reading a file")
	}
	p := filepath.Join(t.TempDir(), "node.key")
	if err := Save(p, Generate()); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0)
	if _, _, err := LoadOrCreate(p); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("unreadable key: err = %v", err)
	}
}

func TestKeyIsADirectory(t *testing.T) {
	p := filepath.Join(t.TempDir(), "node.key")
	os.Mkdir(p, 0o700)
	if _, _, err := LoadOrCreate(p); err == nil {
		t.Fatal("a directory in place of the key file was accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := Parse(b, "fuzz")
		if err == nil && len(k) != 64 {
			t.Fatalf("accepted a key of %d bytes", len(k))
		}
	})
}
