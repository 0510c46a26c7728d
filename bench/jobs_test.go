package bench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/job"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
)

// Jobs: the Speed figures for map/reduce, in one run
// (bench/jobs.sh prints the table).
//
//	BenchmarkJobs   word count over NUBE_BENCH_JOBS_MB MiB (default 1024)
//	                of Zipf-distributed words, seeded, in 64 files, a
//	                quarter on each of 4 nodes (in one process):
//	  local-%       map input bytes read from the mapper's own store  goal ≥ 95
//	  job-s         the job's wall time, Run to Wait
//	  native-s      a plain Go word count of the same files, read from
//	                disk, in one goroutine                             job ≤ 3x
//	  tiny-ms       a 1 KiB job end to end, modules warm (median of 5) goal < 300
//
// Stragglers (one node's CPU capped to a fifth) need the nodes in
// processes of their own; the script says why it skips them.
func BenchmarkJobs(b *testing.B) {
	mb := 1024
	if v, err := strconv.Atoi(os.Getenv("NUBE_BENCH_JOBS_MB")); err == nil && v > 0 {
		mb = v
	}
	const files, nodes = 64, 4
	c := nubetest.Cluster(b, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	coord := c.Node(0)
	for _, name := range []string{"wordcount-map", "wordcount-reduce"} {
		if _, err := coord.Services().Publish(ctx, bytes.NewReader(wasmtest.Example(b, name)),
			service.PublishOptions{Name: name, Version: "1.0.0", Deterministic: true}); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	rng := rand.New(rand.NewSource(37))
	vocab := make([]string, 50000)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%x", rng.Uint32())
	}
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(len(vocab)-1))
	per := int64(mb) << 20 / files
	tree := ft.EmptyDirNode()
	tree.SetCidBuilder(merkledag.V1CidPrefix())
	var paths []string
	var total int64
	for i := range files {
		var buf bytes.Buffer
		buf.Grow(int(per) + 128)
		for int64(buf.Len()) < per {
			for w := range 12 {
				if w > 0 {
					buf.WriteByte(' ')
				}
				buf.WriteString(vocab[zipf.Uint64()])
			}
			buf.WriteByte('\n')
		}
		data := buf.Bytes()
		total += int64(len(data))
		p := filepath.Join(dir, fmt.Sprintf("part-%02d.txt", i))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		paths = append(paths, p)
		// File i lives on node i%4 alone: a quarter each.
		fc, err := c.Node(i%nodes).Content().Add(ctx, bytes.NewReader(data), content.AddOptions{})
		if err != nil {
			b.Fatal(err)
		}
		name := filepath.Base(p)
		if err := tree.AddRawLink(name, &ipld.Link{Name: name, Cid: fc, Size: uint64(len(data))}); err != nil {
			b.Fatal(err)
		}
	}
	in := importDir(b, ctx, coord.Content(), tree)

	// The anchor: the same files, counted in one goroutine.
	start := time.Now()
	native := map[string]int64{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		countWords(data, native)
	}
	nativeT := time.Since(start)

	b.ResetTimer()
	start = time.Now()
	j, err := coord.Jobs().Run(ctx, job.Spec{Input: in.String(), Map: "wordcount-map", Reduce: "wordcount-reduce", Reducers: nodes,
		// Two cores shared with other work: a run may wait its turn long.
		TaskTimeout: 5 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	res, err := j.Wait(ctx)
	jobT := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatalf("job: %v", err)
	}
	p := j.Progress()
	if p.BytesLocal+p.BytesFetched != total {
		b.Fatalf("the maps read %d bytes, the input is %d", p.BytesLocal+p.BytesFetched, total)
	}
	// The result must be the plain count, or the time means nothing.
	got := map[string]int64{}
	es, err := coord.Content().List(ctx, res.String())
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range es {
		f, err := coord.Content().Get(ctx, res.String()+"/"+e.Name)
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		_, err = buf.ReadFrom(f)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		for line := range bytes.Lines(buf.Bytes()) {
			k, v, _ := bytes.Cut(bytes.TrimRight(line, "\n"), []byte("\t"))
			n, _ := strconv.ParseInt(string(v), 10, 64)
			got[string(k)] += n
		}
	}
	if len(got) != len(native) {
		b.Fatalf("the job counted %d distinct words, plain Go %d", len(got), len(native))
	}
	for k, v := range native {
		if got[k] != v {
			b.Fatalf("word %q: the job counted %d, plain Go %d", k, got[k], v)
		}
	}

	// A tiny job: 1 KiB, modules warm, on the coordinator.
	tiny, err := coord.Content().Add(ctx, bytes.NewReader(firstKiB(paths[0], b)), content.AddOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var took []time.Duration
	for range 5 {
		s := time.Now()
		tj, err := coord.Jobs().Run(ctx, job.Spec{Input: tiny.String(), Map: "wordcount-map", Reduce: "wordcount-reduce", Nodes: []peer.ID{coord.ID()}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tj.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(s))
	}
	slices.Sort(took)

	b.ReportMetric(float64(total)/(1<<20), "input-MiB")
	b.ReportMetric(100*float64(p.BytesLocal)/float64(total), "local-%")
	b.ReportMetric(float64(p.BytesLocal), "local-bytes")
	b.ReportMetric(float64(p.BytesFetched), "fetched-bytes")
	b.ReportMetric(float64(p.Nodes), "nodes")
	b.ReportMetric(jobT.Seconds(), "job-s")
	b.ReportMetric(nativeT.Seconds(), "native-s")
	b.ReportMetric(float64(took[2])/1e6, "tiny-ms")
}

// countWords counts the words of data as the example map does: runs of
// bytes other than ASCII whitespace.
func countWords(data []byte, into map[string]int64) {
	start := -1
	for i, c := range data {
		switch c {
		case ' ', '\t', '\n', '\v', '\f', '\r':
			if start >= 0 {
				into[string(data[start:i])]++
				start = -1
			}
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		into[string(data[start:])]++
	}
}

func firstKiB(p string, b *testing.B) []byte {
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	data = data[:1024]
	if i := bytes.LastIndexByte(data, '\n'); i > 0 {
		data = data[:i+1]
	}
	return data
}

// importDir gives n the directory block of tree alone (none of its
// files'), as a coordinator that only knows the input's root.
func importDir(b *testing.B, ctx context.Context, n nube.Content, tree *merkledag.ProtoNode) cid.Cid {
	b.Helper()
	var car bytes.Buffer
	w, err := storage.NewWritable(&car, []cid.Cid{tree.Cid()}, carv2.WriteAsCarV1(true))
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Put(ctx, tree.Cid().KeyString(), tree.RawData()); err != nil {
		b.Fatal(err)
	}
	if err := w.Finalize(); err != nil {
		b.Fatal(err)
	}
	if _, err := n.ImportCAR(ctx, &car, content.ImportOptions{NoPin: true}); err != nil {
		b.Fatal(err)
	}
	return tree.Cid()
}
