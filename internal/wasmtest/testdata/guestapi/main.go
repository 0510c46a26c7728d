// Module guestapi goes through every function of package guest, one line
// of output each, for the harness in internal/wasmtest (guest_test.go) to
// compare with what its fake nube_v1 should have made of them.
package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/nubecloud/nube/guest"
)

func main() {
	s := guest.Space("alice/notes")
	check("put a", s.Put("a", []byte("one")))
	check("put b/empty", s.Put("b/empty", nil))
	check("put b/two", s.Put("b/two", []byte("two")))
	check("put empty key", s.Put("", []byte("x")))

	keys, err := s.List("b/")
	fmt.Printf("list b/: %q %v\n", keys, err)
	keys, err = s.List("")
	fmt.Printf("list: %q %v\n", keys, err)

	v, err := s.Get("a")
	fmt.Printf("get a: %q %v\n", v, err)
	v, err = s.Get("b/empty")
	fmt.Printf("get b/empty: %q %v\n", v, err)

	check("delete a", s.Delete("a"))
	_, err = s.Get("a")
	fmt.Printf("get a after delete: not found %v: %v\n", errors.Is(err, guest.ErrNotFound), err)

	_, err = guest.Space("bob/secrets").Get("k")
	fmt.Printf("get bob/secrets: denied %v: %v\n", errors.Is(err, guest.ErrDenied), err)
	var gerr *guest.Error
	if errors.As(err, &gerr) {
		fmt.Printf("error code %d op %s message %q\n", gerr.Code, gerr.Op, gerr.Message)
	}

	cid, err := guest.Add([]byte("hello content"))
	fmt.Printf("add: %s %v\n", cid, err)
	r, err := guest.Open(cid)
	check("open", err)
	b, err := io.ReadAll(r) // reads of 512 bytes and more, served from 64 KiB ones
	fmt.Printf("read: %q %v\n", b, err)
	fmt.Printf("close: %v, again: %v\n", r.Close(), r.Close())
	_, err = r.Read(make([]byte, 1))
	fmt.Printf("read after close: closed %v\n", errors.Is(err, fs.ErrClosed))
	_, err = guest.Open("bafynothing/x")
	fmt.Printf("open missing: not found %v\n", errors.Is(err, guest.ErrNotFound))

	out, err := guest.Call("upper", []byte("shout"))
	fmt.Printf("call upper: %q %v\n", out, err)
	_, err = guest.Call("nope", nil)
	fmt.Printf("call nope: not found %v: %v\n", errors.Is(err, guest.ErrNotFound), err)

	_, err = guest.Space("alice/notes").Get(strings.Repeat("k", 300))
	fmt.Printf("long message: %d bytes\n", len(err.(*guest.Error).Message))

	guest.Log("done with %d steps", 3)
}

func check(what string, err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, what+":", err)
		os.Exit(1)
	}
	fmt.Println(what + ": ok")
}
