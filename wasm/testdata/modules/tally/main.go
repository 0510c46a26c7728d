// Module tally is a reactor: built with -buildmode=c-shared it exports
// nube_run, which the sandbox calls once per run on an instance it keeps.
// Each run writes "N:" and then its input, where N counts the runs this
// instance has served: tests see from it when an instance is reused.
package main

import (
	"os"
	"strconv"
)

var (
	runs int
	buf  [32 << 10]byte
)

//go:wasmexport nube_run
func run() {
	runs++
	os.Stdout.WriteString(strconv.Itoa(runs) + ":")
	for {
		n, err := os.Stdin.Read(buf[:])
		if n > 0 {
			os.Stdout.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

func main() {}
