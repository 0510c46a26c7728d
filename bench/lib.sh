# bench/lib.sh: helpers the bench scripts share. Source it after setting
# $out to the file holding the go test output.

# median NAME FIELD: the median of a benchmark's figure named FIELD (ns/op,
# MB/s, or a custom metric) over the runs in $out.
median() {
	grep "^Benchmark$1-" "$out" | awk -v f="$2" '{ for (i = 1; i <= NF; i++) if ($i == f) print $(i-1) }' |
		sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'
}
