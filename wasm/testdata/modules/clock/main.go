// Module clock prints what a deterministic run fixes: the time, the
// monotonic time across a sleep, and 16 random bytes.
package main

import (
	"crypto/rand"
	"fmt"
	"time"
)

func main() {
	var b [16]byte
	rand.Read(b[:])
	start := time.Now()
	time.Sleep(time.Millisecond)
	fmt.Printf("%d %d %x\n", start.UnixNano(), time.Since(start), b)
}
