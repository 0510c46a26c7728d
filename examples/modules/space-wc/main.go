// Command space-wc counts the words of a value in a space, as wc -w does:
// its input is "OWNER/SPACE KEY", its output the number of runs of
// non-whitespace in that key's value, and a newline. It streams the value,
// so it counts a value of any size in 64 KiB of memory.
//
// Build it and call it with a grant to read the space:
//
//	GOOS=wasip1 GOARCH=wasm go build -o space-wc.wasm .
//	nube service publish space-wc.wasm --name space-wc
//	nube call space-wc --allow space:OWNER/notes:read <<< "OWNER/notes todo"
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nubecloud/nube/guest"
)

func main() {
	n, err := run(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "space-wc:", err)
		os.Exit(1)
	}
	fmt.Println(n)
}

func run(stdin io.Reader) (int, error) {
	in, err := io.ReadAll(io.LimitReader(stdin, 64<<10))
	if err != nil {
		return 0, err
	}
	args := strings.Fields(string(in))
	if len(args) != 2 {
		return 0, fmt.Errorf("want OWNER/SPACE KEY on stdin, got %q", in)
	}
	r, err := guest.Space(args[0]).Open(args[1])
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", args[0], args[1], err)
	}
	defer r.Close()
	n, err := countWords(r)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", args[0], args[1], err)
	}
	return n, nil
}

// countWords counts the runs of bytes other than ASCII whitespace (what C's
// isspace calls space), carrying a word across reads.
func countWords(r io.Reader) (int, error) {
	buf := make([]byte, 64<<10)
	words, inWord := 0, false
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			switch c {
			case ' ', '\t', '\n', '\v', '\f', '\r':
				inWord = false
			default:
				if !inWord {
					words++
				}
				inWord = true
			}
		}
		if err == io.EOF {
			return words, nil
		}
		if err != nil {
			return 0, err
		}
	}
}
