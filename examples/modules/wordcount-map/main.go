// Command wordcount-map is the map of a word count job (MAPREDUCE.md):
// it counts the words of its split (runs of bytes other than ASCII
// whitespace, as wc -w counts them) and emits one record per distinct
// word, word<TAB>count, in the word's partition. Counting within the
// split first (a combiner) keeps the partitions small.
//
//	GOOS=wasip1 GOARCH=wasm go build -o wordcount-map.wasm .
//	nube service publish wordcount-map.wasm --name wordcount-map --deterministic
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"

	"github.com/nubecloud/nube/guest/mapreduce"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount-map:", err)
		os.Exit(1)
	}
}

func run() error {
	in, err := mapreduce.ReadMap(os.Stdin)
	if err != nil {
		return err
	}
	counts := map[string]int{}
	err = in.Records(func(line []byte) error {
		start := -1
		for i, c := range line {
			if space(c) {
				if start >= 0 {
					counts[string(line[start:i])]++
					start = -1
				}
			} else if start < 0 {
				start = i
			}
		}
		if start >= 0 {
			counts[string(line[start:])]++
		}
		return nil
	})
	if err != nil {
		return err
	}
	// In key order: the same split gives the same bytes on every node.
	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	sort.Strings(words)
	out := mapreduce.NewOutput(in.Reducers)
	for _, w := range words {
		out.Emit(w, strconv.Itoa(counts[w]))
	}
	return out.Finish(os.Stdout)
}

func space(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}
