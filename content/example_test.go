package content_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/nubecloud/nube/content"
)

// FileCID tells what CID some bytes will have once added, without storing
// them: the way to check that bytes are what a CID names.
func ExampleFileCID() {
	c, err := content.FileCID(strings.NewReader("Hello Mars!\n"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c)
	// Output: bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4
}

// ParsePath splits the paths users type into a root CID and the names
// below it; a malformed CID gets an error that says so.
func ExampleParsePath() {
	root, parts, err := content.ParsePath("/ipfs/bafybeih7e5dmkyk25up5vxug4q3hrg2fxbzf23dfrac2fns5h7z4aa7ioi/mars.txt")
	fmt.Println(root, parts, err)
	_, _, err = content.ParsePath("not-a-cid/x")
	fmt.Println(err != nil)
	// Output:
	// bafybeih7e5dmkyk25up5vxug4q3hrg2fxbzf23dfrac2fns5h7z4aa7ioi [mars.txt] <nil>
	// true
}
