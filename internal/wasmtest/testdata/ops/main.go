// Module ops does what each line of its input says through package guest
// and prints one line per operation: "ok RESULT" or "err CODE MESSAGE".
// The service layer's tests drive it as a hostile module would: reading
// spaces it was not granted, writing under a read right, calling what it
// may not, nesting too deep.
//
//	get OWNER/NAME KEY       the value
//	put OWNER/NAME KEY VALUE
//	delete OWNER/NAME KEY
//	list OWNER/NAME PREFIX   the keys, comma-separated
//	open CID[/PATH]          the number of bytes read
//	add TEXT                 the CID
//	call REF INPUT           the output
//	log TEXT
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nubecloud/nube/guest"
)

func main() {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 4)
		arg := func(i int) string {
			if i < len(f) {
				return f[i]
			}
			return ""
		}
		var out string
		var err error
		switch f[0] {
		case "get":
			var b []byte
			b, err = guest.Space(arg(1)).Get(arg(2))
			out = string(b)
		case "put":
			err = guest.Space(arg(1)).Put(arg(2), []byte(arg(3)))
		case "delete":
			err = guest.Space(arg(1)).Delete(arg(2))
		case "list":
			var keys []string
			keys, err = guest.Space(arg(1)).List(arg(2))
			out = strings.Join(keys, ",")
		case "open":
			var r io.ReadCloser
			if r, err = guest.Open(arg(1)); err == nil {
				var n int64
				n, err = io.Copy(io.Discard, r)
				r.Close()
				out = fmt.Sprint(n)
			}
		case "add":
			out, err = guest.Add([]byte(strings.Join(f[1:], " ")))
		case "call":
			var b []byte
			b, err = guest.Call(arg(1), []byte(strings.Join(f[2:], " ")))
			out = string(b)
		case "log":
			guest.Log("%s", strings.Join(f[1:], " "))
		default:
			err = fmt.Errorf("unknown op %q", f[0])
		}
		var ge *guest.Error
		switch {
		case errors.As(err, &ge):
			fmt.Printf("err %d %s\n", ge.Code, ge.Message)
		case err != nil:
			fmt.Printf("err 0 %v\n", err)
		default:
			fmt.Printf("ok %s\n", out)
		}
	}
}
