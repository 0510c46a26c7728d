package nube_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// module is this module's path.
const module = "github.com/nubecloud/nube"

// ranks places each package on the layer map of ARCHITECTURE.md. A package
// imports only packages of a lower rank, or utilities (rank 0). A package
// not listed here fails the test, so a new one gets its place on the map.
var ranks = map[string]int{
	"errcode": 0, "nodecert": 0, "invite": 0, "internal/wire": 0, "internal/identity": 0, "internal/atomicfile": 0, "internal/lockfile": 0, "internal/dirtar": 0,
	"internal/termsafe": 0, "internal/progress": 0, "internal/netns": 0, "internal/wasmtest": 0, "internal/hosttest": 0, "internal/browsertest": 0, "internal/fdpass": 0,
	"wasm": 1, "api/client": 1, "guest": 1,
	"internal/p2p": 2, "guest/mapreduce": 2,
	"content": 3, "remote": 3,
	"service":  4,
	"group":    4,
	"space":    4,
	"names":    4,
	"ledger":   5,
	"topic":    5,
	"job":      5,
	"cache":    5,
	"":         6, // the facade, at the module root
	"api":      7,
	"cmd/nube": 8, "nubetest": 8, "bench": 8, "examples/modules/space-wc": 8,
	"examples/modules/wordcount-map": 8, "examples/modules/wordcount-reduce": 8,
	"examples/modules/inverted-index-map": 8, "examples/modules/inverted-index-reduce": 8,
}

// TestImportRules checks every package's imports (tests aside) against the
// layer map: no layer imports one above it or beside it, and the sandbox
// imports no other nube package at all.
func TestImportRules(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "./...").Output()
	if err != nil {
		t.Skipf("go list: %v (the go command is needed to read the imports)", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	seen := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		seen++
		name := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		rank, ok := ranks[name]
		if !ok {
			t.Errorf("package %q has no place on the layer map: add it to ranks here and to ARCHITECTURE.md", name)
			continue
		}
		for _, imp := range p.Imports {
			if imp != module && !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
			switch depRank := ranks[dep]; {
			case name == "wasm":
				t.Errorf("wasm imports %s: the sandbox must stand alone, importing no other nube package", imp)
			case depRank != 0 && depRank >= rank:
				t.Errorf("%s (rank %d) imports %s (rank %d): a layer imports only layers below it", p.ImportPath, rank, imp, depRank)
			}
		}
	}
	if seen < len(ranks) {
		t.Errorf("go list showed %d packages, the map has %d: remove the ones that are gone", seen, len(ranks))
	}
}

// TestLeanPackages checks what two packages link, all the way down: a Go
// client of the daemon links none of the node (no libp2p, Pebble or
// wazero), and the sandbox none of the network or the store.
func TestLeanPackages(t *testing.T) {
	t.Parallel()
	for pkg, banned := range map[string][]string{
		"api/client": {"github.com/libp2p/", "github.com/cockroachdb/pebble", "github.com/tetratelabs/wazero", "github.com/ipfs/"},
		"wasm":       {"github.com/libp2p/", "github.com/cockroachdb/pebble", "github.com/ipfs/boxo"},
	} {
		out, err := exec.Command("go", "list", "-deps", module+"/"+pkg).Output()
		if err != nil {
			t.Skipf("go list: %v (the go command is needed to read the imports)", err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range banned {
				if strings.HasPrefix(dep, b) {
					t.Errorf("%s links %s", pkg, dep)
				}
			}
		}
	}
}
