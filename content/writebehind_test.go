package content

import (
	"bytes"
	"testing"
)

// TestWriteBehind: the store asks for each pack's bytes to be written
// once every writeBehindEvery bytes appended, from where it last asked,
// and starts again from zero in a new pack.
func TestWriteBehind(t *testing.T) {
	s := newBlockStore(nil, t.TempDir())
	s.packSize = 3 * writeBehindEvery
	t.Cleanup(func() { s.close() })
	chunk := bytes.Repeat([]byte{7}, writeBehindEvery/4+1) // not a divisor: the asks fall between blocks
	var asked []int64
	for i := range 14 {
		if _, err := s.appendBlock(string(rune('a'+i)), chunk, 0, false); err != nil {
			t.Fatal(err)
		}
		asked = append(asked, s.behind)
	}
	n := int64(len(chunk))
	want := []int64{0, 0, 0, 4 * n, 4 * n, 4 * n, 4 * n, 8 * n, 8 * n, 8 * n, 8 * n, 0, 0, 0}
	// The 12th block does not fit in the first pack (3*every), so it
	// starts the second, where nothing has been asked for yet.
	for i := range want {
		if asked[i] != want[i] {
			t.Fatalf("after block %d: asked up to %d, want %d (all: %v)", i+1, asked[i], want[i], asked)
		}
	}
	if s.num != 2 {
		t.Fatalf("the blocks went to %d packs, want 2", s.num)
	}
}
