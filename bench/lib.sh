# bench/lib.sh: helpers the bench scripts share. Source it after setting
# $out to the file holding the go test output.

# median NAME FIELD: the median of a benchmark's figure named FIELD (ns/op,
# MB/s, or a custom metric) over the runs in $out.
median() {
	grep "^Benchmark$1-" "$out" | awk -v f="$2" '{ for (i = 1; i <= NF; i++) if ($i == f) print $(i-1) }' |
		sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'
}

# row LABEL OURS BASELINE UNIT GOAL [DIVISOR]: one line of a side-by-side
# table, with the ratio ours/baseline; both figures are divided by DIVISOR
# (1000 turns ns into µs).
row() {
	awk -v l="$1" -v o="$2" -v b="$3" -v u="$4" -v g="$5" -v d="${6:-1}" 'BEGIN {
		o /= d; b /= d; r = (b > 0) ? o / b : 0
		printf "%-30s %10.1f %-7s %10.1f %-7s %6.2f   %s\n", l, o, u, b, u, r, g }'
}
