// Module hostbench is a reactor that repeats a host call many times in
// one run, so that a benchmark's time per call is the host call's and not
// the run's start: service/hostbench_test.go and bench/capabilities.sh.
// Each input line is one job; it prints one line per job, "ok BYTES" (the
// bytes it read, in all) or "err CODE MESSAGE".
//
//	get OWNER/NAME KEY N   read the key N times (guest.Space.Get)
//	read OWNER/NAME KEY N  the same with Space.Open into one buffer: no allocation
//	open CID               stream the content to nothing, 64 KiB a read
//	call REF N INPUT       call the service N times on INPUT
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/nubecloud/nube/guest"
)

var buf = make([]byte, 64<<10)

//go:wasmexport nube_run
func run() {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 4)
		arg := func(i int) string {
			if i < len(f) {
				return f[i]
			}
			return ""
		}
		var total int64
		var err error
		switch f[0] {
		case "get":
			n, _ := strconv.Atoi(arg(3))
			s := guest.Space(arg(1))
			for range n {
				var b []byte
				if b, err = s.Get(arg(2)); err != nil {
					break
				}
				total += int64(len(b))
			}
		case "read":
			n, _ := strconv.Atoi(arg(3))
			s := guest.Space(arg(1))
			for range n {
				var r io.ReadCloser
				if r, err = s.Open(arg(2)); err != nil {
					break
				}
				for {
					k, rerr := r.Read(buf)
					total += int64(k)
					if rerr != nil {
						if rerr != io.EOF {
							err = rerr
						}
						break
					}
				}
				r.Close()
				if err != nil {
					break
				}
			}
		case "open":
			var r io.ReadCloser
			if r, err = guest.Open(arg(1)); err == nil {
				// Reads of 64 KiB go straight into buf: io.Copy to
				// io.Discard would read 8 KiB at a time.
				for {
					n, rerr := r.Read(buf)
					total += int64(n)
					if rerr != nil {
						if rerr != io.EOF {
							err = rerr
						}
						break
					}
				}
				r.Close()
			}
		case "call":
			n, _ := strconv.Atoi(arg(2))
			in := []byte(arg(3))
			for range n {
				var b []byte
				if b, err = guest.Call(arg(1), in); err != nil {
					break
				}
				total += int64(len(b))
			}
		default:
			err = fmt.Errorf("unknown job %q", f[0])
		}
		var ge *guest.Error
		switch {
		case errors.As(err, &ge):
			fmt.Printf("err %d %s\n", ge.Code, ge.Message)
		case err != nil:
			fmt.Printf("err 0 %v\n", err)
		default:
			fmt.Printf("ok %d\n", total)
		}
	}
}

func main() {}
