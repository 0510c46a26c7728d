//go:build !wasip1

package guest

import (
	"errors"
	"os"
	"strings"
)

// Outside a nube module there is no host to ask: every function fails with
// errNotModule, so that code using the package still builds, vets and
// tests on any platform.

var errNotModule = errors.New("guest: runs only inside a nube module (build with GOOS=wasip1 GOARCH=wasm)")

func spaceGet(space, key string) (int32, error)     { return 0, errNotModule }
func spacePut(space, key string, val []byte) error  { return errNotModule }
func spaceDelete(space, key string) error           { return errNotModule }
func spaceList(space, prefix string) (int32, error) { return 0, errNotModule }
func open(path string) (int32, error)               { return 0, errNotModule }
func call(ref string, in []byte) (int32, error)     { return 0, errNotModule }
func add(data []byte) (string, error)               { return "", errNotModule }
func read(h int32, p []byte) (int, error)           { return 0, errNotModule }
func closeHandle(h int32) error                     { return errNotModule }
func size(h int32) int64                            { return -1 }

func hostLog(line string) {
	if !strings.HasSuffix(line, "\n") {
		line += "\n"
	}
	os.Stderr.WriteString(line)
}
