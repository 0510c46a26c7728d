// Command burn is CPU-bound work for benchmarks: it hashes a 32-byte
// state N times with SHA-256, N read from stdin, and writes the final
// state in hex.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"strconv"
	"strings"
)

func main() {
	in, _ := io.ReadAll(os.Stdin)
	n, err := strconv.Atoi(strings.TrimSpace(string(in)))
	if err != nil || n < 0 {
		os.Stderr.WriteString("burn: want a round count on stdin\n")
		os.Exit(2)
	}
	var state [32]byte
	for range n {
		state = sha256.Sum256(state[:])
	}
	os.Stdout.WriteString(hex.EncodeToString(state[:]) + "\n")
}
