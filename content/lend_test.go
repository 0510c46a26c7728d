package content

import (
	"bytes"
	"context"
	"io"
	"math/rand"
	"testing"
	"time"

	"github.com/nubecloud/nube/internal/hosttest"
)

// TestLendsMessageBuffers reads a file from another node, whose blocks
// come in messages read into lent buffers, and pins a second one: the
// bytes read and stored are the ones added (a buffer given back while a
// block in it was still to be stored, kept or read would show here), and
// nearly every buffer lent went back.
func TestLendsMessageBuffers(t *testing.T) {
	hs := hosttest.Hosts(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var svcs []*Service
	for _, h := range hs {
		st, err := OpenStore(t.TempDir()) // on disk: blocks go to packs
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(ctx, Config{Host: h, Store: st})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(); st.Close() })
		svcs = append(svcs, s)
	}
	provider, fetcher := svcs[0], svcs[1]
	rnd := rand.New(rand.NewSource(7))
	files := make([][]byte, 2)
	for i := range files {
		files[i] = make([]byte, 40*ChunkSize+123)
		rnd.Read(files[i])
	}
	out0, back0 := lentOut.Load(), lentBack.Load()

	c0, err := provider.Add(ctx, bytes.NewReader(files[0]), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := fetcher.Get(ctx, c0.String())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, files[0]) {
		t.Fatalf("read %d of %d bytes (equal: %v): %v", len(got), len(files[0]), bytes.Equal(got, files[0]), err)
	}

	c1, err := provider.Add(ctx, bytes.NewReader(files[1]), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := fetcher.Pin(ctx, c1, "", nil); err != nil {
		t.Fatal(err)
	}
	for i, c := range []string{c0.String(), c1.String()} {
		f, err := fetcher.Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil || !bytes.Equal(got, files[i]) {
			t.Fatalf("file %d read back from the store: %d of %d bytes differ or fail: %v", i, len(got), len(files[i]), err)
		}
	}
	v, err := fetcher.Verify(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Bad) > 0 {
		t.Fatalf("%d of %d stored blocks are bad", len(v.Bad), v.Checked)
	}

	out, back := lentOut.Load()-out0, lentBack.Load()-back0
	t.Logf("%d buffers lent, %d given back", out, back)
	if out < 20 {
		t.Fatalf("only %d messages were read into lent buffers", out)
	}
	if back < out*9/10 {
		t.Errorf("%d of %d lent buffers went back", back, out)
	}
}
