package guest_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"

	"github.com/nubecloud/nube/guest"
)

// A module that prints a note, saying what grant it needs when the caller
// gave none.
func ExampleSpace_Get() {
	note, err := guest.Space("alice/notes").Get("todo")
	if errors.Is(err, guest.ErrDenied) {
		fmt.Fprintln(os.Stderr, "call me with --allow space:alice/notes:read")
		os.Exit(1)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.Write(note)
}

// A module that streams a value too big to hold, line by line.
func ExampleSpace_Open() {
	r, err := guest.Space("alice/logs").Open("2026-12-07")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer r.Close()
	lines := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		lines++
	}
	guest.Log("%d lines", lines)
}

func ExampleCall() {
	out, err := guest.Call("upper | wc", []byte("hello nube"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}
