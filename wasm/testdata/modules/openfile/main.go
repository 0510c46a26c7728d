// Command openfile tries to read files of the host: the sandbox gives it
// none. It reports what happened on stdout for the test to check.
package main

import (
	"fmt"
	"os"
)

func main() {
	for _, path := range []string{"/etc/passwd", "/etc/hostname", ".", "/"} {
		if data, err := os.ReadFile(path); err == nil {
			fmt.Printf("read %s: %d bytes\n", path, len(data))
			continue
		} else {
			fmt.Printf("denied %s: %v\n", path, err)
		}
		if ents, err := os.ReadDir(path); err == nil {
			fmt.Printf("listed %s: %d entries\n", path, len(ents))
		}
	}
}
