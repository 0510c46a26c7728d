// Command upper writes its input upper-cased: the simplest service.
package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
)

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		os.Stderr.WriteString("upper: " + err.Error() + "\n")
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	w.Write(bytes.ToUpper(in))
	w.Flush()
}
