// Command wc counts the words of its input and writes one "word count"
// line per distinct word, sorted by word.
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
)

func main() {
	counts := map[string]int{}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sc.Split(bufio.ScanWords)
	for sc.Scan() {
		counts[sc.Text()]++
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "wc:", err)
		os.Exit(1)
	}
	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	sort.Strings(words)
	out := bufio.NewWriter(os.Stdout)
	for _, w := range words {
		fmt.Fprintf(out, "%s %d\n", w, counts[w])
	}
	out.Flush()
}
