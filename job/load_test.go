package job

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// A job file whose sums would give the budget back room it never had is
// left aside when read.
func TestLoadRefusesNegativeSums(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"20260101-000000-aaaa0001": `{"id":"20260101-000000-aaaa0001","state":"running","spent":-5000}`,
		"20260101-000000-aaaa0002": `{"id":"20260101-000000-aaaa0002","state":"running","maps":[{"name":"map-00000","done":true,"pay":{"call":"1","cost":-3,"most":1}}]}`,
		"20260101-000000-aaaa0003": `{"id":"20260101-000000-aaaa0003","state":"running","spent":700}`,
	}
	for id, body := range files {
		if err := os.WriteFile(filepath.Join(dir, id+".json"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m := &Manager{cfg: Config{Dir: dir}, log: slog.New(slog.DiscardHandler)}
	recs, err := m.load()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].ID != "20260101-000000-aaaa0003" || recs[0].Spent != 700 {
		t.Fatalf("read back %d records: %+v", len(recs), recs)
	}
}
