// Command wordcount-reduce is the reduce of a word count job
// (MAPREDUCE.md): it adds up the counts each map task gave a word and
// prints word<TAB>total, one line per word, sorted by word.
//
//	GOOS=wasip1 GOARCH=wasm go build -o wordcount-reduce.wasm .
//	nube service publish wordcount-reduce.wasm --name wordcount-reduce --deterministic
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"

	"github.com/nubecloud/nube/guest/mapreduce"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount-reduce:", err)
		os.Exit(1)
	}
}

func run() error {
	in, err := mapreduce.ReadReduce(os.Stdin)
	if err != nil {
		return err
	}
	totals := map[string]int64{}
	err = in.Records(func(word, count string) error {
		n, err := strconv.ParseInt(count, 10, 64)
		if err != nil {
			return fmt.Errorf("word %q: count %q: %w", word, count, err)
		}
		totals[word] += n
		return nil
	})
	if err != nil {
		return err
	}
	words := make([]string, 0, len(totals))
	for w := range totals {
		words = append(words, w)
	}
	sort.Strings(words)
	w := bufio.NewWriter(os.Stdout)
	for _, word := range words {
		fmt.Fprintf(w, "%s\t%d\n", word, totals[word])
	}
	return w.Flush()
}
