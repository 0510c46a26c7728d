// Command shout fails with an error meant to take over the caller's
// terminal: it clears the screen, retitles the window, writes in red and
// spreads over several lines. Callers must show it harmlessly.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprint(os.Stderr, "\x1b[2J\x1b]0;pwned\x07\x1b[31mred alert\x1b[0m\nsecond line\rover\n")
	os.Exit(1)
}
