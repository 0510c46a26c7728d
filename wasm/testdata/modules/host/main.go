// Module host is a reactor that calls host functions of the import
// module nube_v1, which the tests provide. Its input is a command and an
// argument; its output starts with "N:", where N counts the runs this
// instance has served.
//
//	echo TEXT   passes TEXT to echo and writes what echo put in its buffer
//	probe       calls probe, which checks the bounds of the host's Memory
//	block       calls block, which returns when the run's context ends
//	spin N      calls nop N times
package main

import (
	"io"
	"os"
	"strconv"
	"strings"
	"unsafe"
)

//go:wasmimport nube_v1 echo
func echo(in unsafe.Pointer, n uint32, out unsafe.Pointer, capacity uint32) int32

//go:wasmimport nube_v1 probe
func probe(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport nube_v1 block
func block() int32

//go:wasmimport nube_v1 nop
func nop(x int64) int64

var (
	runs int
	out  [4 << 10]byte
)

//go:wasmexport nube_run
func run() {
	runs++
	os.Stdout.WriteString(strconv.Itoa(runs) + ":")
	in, _ := io.ReadAll(os.Stdin)
	cmd, arg, _ := strings.Cut(string(in), " ")
	switch cmd {
	case "echo":
		b := []byte(arg)
		var p unsafe.Pointer
		if len(b) > 0 {
			p = unsafe.Pointer(&b[0])
		}
		n := echo(p, uint32(len(b)), unsafe.Pointer(&out[0]), uint32(len(out)))
		if n < 0 {
			os.Stdout.WriteString("error " + strconv.Itoa(int(n)))
			return
		}
		os.Stdout.Write(out[:n])
	case "probe":
		b := []byte("sixteen bytes!!!")
		os.Stdout.WriteString(strconv.Itoa(int(probe(unsafe.Pointer(&b[0]), uint32(len(b))))))
	case "block":
		block()
		os.Stdout.WriteString("unblocked")
	case "spin":
		n, _ := strconv.Atoi(arg)
		var x int64
		for range n {
			x = nop(x)
		}
		os.Stdout.WriteString(strconv.FormatInt(x, 10))
	default:
		os.Stdout.WriteString("unknown command " + strconv.Quote(cmd))
	}
}

func main() {}
