// Command hog keeps allocating memory until the sandbox refuses more.
package main

import "os"

var keep [][]byte

func main() {
	for {
		keep = append(keep, make([]byte, 1<<20))
		if len(keep)%64 == 0 {
			os.Stdout.WriteString(".")
		}
	}
}
