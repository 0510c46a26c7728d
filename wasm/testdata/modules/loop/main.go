// Command loop never ends: the sandbox must stop it at its deadline.
package main

var n uint64

func main() {
	for {
		n++
	}
}
