package space_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/space"
)

// TestRunLeavesNoKeys lends a space to a run on C and, once the run has
// ended, searches C's data dir and C's records of the run for the
// space's keys, in any of the encodings a log or record would use, and
// the holder's data dir for the value in plaintext: none is there.
func TestRunLeavesNoKeys(t *testing.T) {
	c := nubetest.Cluster(t, 3, nubetest.WithDataDirs())
	a, b, r := c.Node(0), c.Node(1), c.Node(2)
	ctx := nubetest.Context(t, 3*time.Minute)
	s, err := a.Spaces().Create(ctx, "plans", space.Policy{On: []peer.ID{b.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	secret := "meet at the old mill at dawn, bring the maps"
	if err := s.PutBytes(ctx, "plan", []byte(secret)); err != nil {
		t.Fatal(err)
	}
	d, err := a.Services().Publish(ctx, bytes.NewReader(wasmtest.Example(t, "space-wc")), service.PublishOptions{Name: "space-wc", Wants: []string{"space:read"}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := a.Service(d.Name).On(r.ID()).Allow(service.Allow{Space: s.ID(), Access: service.Read}).Call(ctx, []byte(s.ID()+" plan\n"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(out)) != "10" {
		t.Fatalf("the run counted %q words", out)
	}
	keys, err := space.SpaceKeyBytes(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	var needles [][]byte
	for _, k := range keys {
		needles = append(needles, k, []byte(hex.EncodeToString(k)), []byte(base64.StdEncoding.EncodeToString(k)),
			[]byte(base64.RawURLEncoding.EncodeToString(k)))
	}
	records, err := json.Marshal(r.Services().Runs())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(records, []byte(s.ID()+"/plan")) {
		t.Fatalf("the runner's records do not name the run's read: %s", records)
	}
	for _, n := range needles {
		if bytes.Contains(records, n) {
			t.Fatalf("the runner's records of the run hold a space key")
		}
	}
	search := func(dir string, needles ...[]byte) []string {
		var found []string
		err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil // a lock or socket
			}
			for _, n := range needles {
				if bytes.Contains(b, n) {
					found = append(found, p)
					break
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	if files := search(r.Config().DataDir, needles...); len(files) > 0 {
		t.Errorf("the runner's data dir holds a space key in %v", files)
	}
	for _, n := range []struct {
		name string
		dir  string
	}{{"holder", b.Config().DataDir}, {"runner", r.Config().DataDir}} {
		if files := search(n.dir, []byte(secret), []byte("old mill")); len(files) > 0 {
			t.Errorf("the %s's data dir holds the value in plaintext in %v", n.name, files)
		}
	}
	// The search finds what is there: a file holding a key matches.
	probe := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(probe, append([]byte("x"), keys[1]...), 0o600); err != nil {
		t.Fatal(err)
	}
	if len(search(filepath.Dir(probe), needles...)) != 1 {
		t.Fatal("the search does not find a key written to a file")
	}
}
