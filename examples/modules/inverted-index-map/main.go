// Command inverted-index-map is the map of an inverted index job
// (MAPREDUCE.md): for each distinct word (lower-cased, letters and
// digits) of its split it emits word<TAB>NAME, NAME being the input
// file's path within the job's input directory.
//
//	GOOS=wasip1 GOARCH=wasm go build -o inverted-index-map.wasm .
//	nube service publish inverted-index-map.wasm --name inverted-index-map --deterministic
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"unicode"

	"github.com/nubecloud/nube/guest/mapreduce"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "inverted-index-map:", err)
		os.Exit(1)
	}
}

func run() error {
	in, err := mapreduce.ReadMap(os.Stdin)
	if err != nil {
		return err
	}
	// A document name is one value: commas separate names in the
	// reduce's output.
	name := strings.ReplaceAll(in.Name, ",", "_")
	seen := map[string]bool{}
	err = in.Records(func(line []byte) error {
		for _, w := range strings.FieldsFunc(string(line), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
			seen[strings.ToLower(w)] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	words := make([]string, 0, len(seen))
	for w := range seen {
		words = append(words, w)
	}
	sort.Strings(words)
	out := mapreduce.NewOutput(in.Reducers)
	for _, w := range words {
		out.Emit(w, name)
	}
	return out.Finish(os.Stdout)
}
