// Command hog keeps allocating memory until the sandbox refuses more.
package main

import "os"

var keep [][]byte

func main() {
	for {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = byte(i)
		}
		keep = append(keep, b)
		if len(keep)%64 == 0 {
			os.Stdout.WriteString(".")
		}
	}
}
