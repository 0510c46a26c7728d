// Command inverted-index-reduce is the reduce of an inverted index job
// (MAPREDUCE.md): for each word it prints word<TAB>doc,doc,… with the
// names of the documents the word is in, sorted and once each, one line
// per word, sorted by word.
//
//	GOOS=wasip1 GOARCH=wasm go build -o inverted-index-reduce.wasm .
//	nube service publish inverted-index-reduce.wasm --name inverted-index-reduce --deterministic
package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/nubecloud/nube/guest/mapreduce"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "inverted-index-reduce:", err)
		os.Exit(1)
	}
}

func run() error {
	in, err := mapreduce.ReadReduce(os.Stdin)
	if err != nil {
		return err
	}
	docs := map[string][]string{}
	err = in.Records(func(word, doc string) error {
		docs[word] = append(docs[word], doc)
		return nil
	})
	if err != nil {
		return err
	}
	words := make([]string, 0, len(docs))
	for w := range docs {
		words = append(words, w)
	}
	sort.Strings(words)
	w := bufio.NewWriter(os.Stdout)
	for _, word := range words {
		d := docs[word]
		sort.Strings(d)
		fmt.Fprintf(w, "%s\t%s\n", word, strings.Join(slices.Compact(d), ","))
	}
	return w.Flush()
}
