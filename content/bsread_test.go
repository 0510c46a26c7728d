package content

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/nubecloud/nube/internal/hosttest"
)

// wire returns m as sent on the wire, less its length prefix; v0 for a
// bitswap 1.0 message (blocks in the old field).
func wire(t testing.TB, m bsmsg.BitSwapMessage, v0 bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	if v0 {
		err = m.ToNetV0(&buf)
	} else {
		err = m.ToNetV1(&buf)
	}
	if err != nil {
		t.Fatal(err)
	}
	_, n := binary.Uvarint(buf.Bytes())
	return buf.Bytes()[n:]
}

// sampleMessage has a bit of everything a message carries.
func sampleMessage(t testing.TB) bsmsg.BitSwapMessage {
	m := bsmsg.New(true)
	wanted := blocks.NewBlock([]byte("wanted"))
	m.AddEntry(wanted.Cid(), 7, pb.Message_Wantlist_Block, true)
	m.AddEntry(blocks.NewBlock([]byte("had?")).Cid(), 3, pb.Message_Wantlist_Have, false)
	m.Cancel(blocks.NewBlock([]byte("no longer")).Cid())
	m.AddHave(blocks.NewBlock([]byte("have")).Cid())
	m.AddDontHave(blocks.NewBlock([]byte("dont")).Cid())
	m.SetPendingBytes(12345)
	for _, n := range []int{0, 10, sharedBlockMin - 1, sharedBlockMin, 300 << 10} {
		m.AddBlock(rawBlock(t, n))
	}
	return m
}

// rawBlock is a raw-leaf block of n pseudo-random bytes.
func rawBlock(t testing.TB, n int) blocks.Block {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i*7 + n)
	}
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x12, MhLength: -1}.Sum(data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := blocks.NewBlockWithCid(data, c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// messageText writes down everything a receiver can learn from m, in an
// order of its own, so that two messages can be compared.
func messageText(m bsmsg.BitSwapMessage) string {
	var lines []string
	for _, e := range m.Wantlist() {
		lines = append(lines, fmt.Sprintf("want %s prio=%d type=%v cancel=%v dont=%v", e.Cid, e.Priority, e.WantType, e.Cancel, e.SendDontHave))
	}
	for _, b := range m.Blocks() {
		lines = append(lines, fmt.Sprintf("block %s %x", b.Cid(), b.RawData()))
	}
	for _, p := range m.BlockPresences() {
		lines = append(lines, fmt.Sprintf("presence %s %v", p.Cid, p.Type))
	}
	slices.Sort(lines)
	return fmt.Sprintf("full=%v pending=%d\n%s", m.Full(), m.PendingBytes(), strings.Join(lines, "\n"))
}

// boxoDecode decodes b as boxo's network does.
func boxoDecode(b []byte) (bsmsg.BitSwapMessage, error) {
	framed := append(binary.AppendUvarint(nil, uint64(len(b))), b...)
	m, _, err := bsmsg.FromNet(bytes.NewReader(framed))
	return m, err
}

// FuzzDecodeMessage holds decodeMessage to boxo's decoder: for any bytes,
// both fail, or both give the same message.
func FuzzDecodeMessage(f *testing.F) {
	m := sampleMessage(f)
	small := bsmsg.New(false)
	small.AddBlock(rawBlock(f, 100))
	small.AddEntry(rawBlock(f, 1).Cid(), 1, pb.Message_Wantlist_Have, true)
	prefix := rawBlock(f, 5).Cid().Prefix().Bytes()
	block := func(fields ...[]byte) []byte { // a payload field made of fields
		return protowire.AppendBytes(protowire.AppendTag(nil, fieldPayload, protowire.BytesType), bytes.Join(fields, nil))
	}
	bytesField := func(num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
	}
	varintField := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
	}
	for _, seed := range [][]byte{
		wire(f, m, false),
		wire(f, m, true),
		wire(f, small, false),
		{},
		// The last prefix and the last data count; unknown fields are skipped.
		block(bytesField(fieldPrefix, []byte{1, 2}), bytesField(fieldPrefix, prefix), bytesField(fieldData, []byte("xx")), bytesField(fieldData, []byte("hello")), varintField(9, 1)),
		// Prefix or data of the wrong type.
		block(varintField(fieldPrefix, 1), bytesField(fieldData, []byte("hello"))),
		block(bytesField(fieldPrefix, prefix), varintField(fieldData, 3)),
		// Blocks in fields of the wrong type, a bad prefix, no prefix.
		varintField(fieldBlocks, 4),
		varintField(fieldPayload, 4),
		block(bytesField(fieldPrefix, []byte{0xff}), bytesField(fieldData, []byte("x"))),
		block(bytesField(fieldData, []byte("x"))),
		// Cut short, and a length past the end.
		wire(f, small, false)[:20],
		{0x1a, 0x80, 0x01, 0x00},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantErr := boxoDecode(b)
		got, err := decodeMessage(bytes.Clone(b))
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("decodeMessage error %v, boxo's %v", err, wantErr)
		}
		if err != nil {
			return
		}
		if g, w := messageText(got), messageText(want); g != w {
			t.Fatalf("decodeMessage gave\n%s\nboxo gave\n%s", g, w)
		}
	})
}

// TestDecodeMessageShares checks that large blocks stay in the message's
// buffer, the copy this file saves, and small ones do not.
func TestDecodeMessageShares(t *testing.T) {
	buf := wire(t, sampleMessage(t), false)
	m, err := decodeMessage(buf)
	if err != nil {
		t.Fatal(err)
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	inBuf := func(d []byte) bool {
		p := uintptr(unsafe.Pointer(unsafe.SliceData(d)))
		return len(d) > 0 && p >= start && p < start+uintptr(len(buf))
	}
	var checked int
	for _, b := range m.Blocks() {
		d := b.RawData()
		if len(d) == 0 {
			continue
		}
		checked++
		if shared := len(d) >= sharedBlockMin; inBuf(d) != shared {
			t.Errorf("block of %d bytes: in the message's buffer %v, want %v", len(d), inBuf(d), shared)
		}
		// A block bound for a pack carries the CRC-32C of its bytes.
		cb, ok := b.(checkedBlock)
		if packed := len(d) >= packMin; ok != packed {
			t.Errorf("block of %d bytes: carries a checksum %v, want %v", len(d), ok, packed)
		} else if ok && cb.crc != crc32.Checksum(d, castagnoli) {
			t.Errorf("block of %d bytes: carries checksum %08x, its bytes sum to %08x", len(d), cb.crc, crc32.Checksum(d, castagnoli))
		}
	}
	if checked != 4 {
		t.Fatalf("checked %d blocks, want 4", checked)
	}
}

// TestReadMessage reads messages off a stream: one after another, a clean
// end, and the ways a stream goes wrong.
func TestReadMessage(t *testing.T) {
	frame := func(b []byte) []byte { return append(binary.AppendUvarint(nil, uint64(len(b))), b...) }
	one, two := sampleMessage(t), bsmsg.New(false)
	two.AddBlock(rawBlock(t, 1000))
	stream := append(frame(wire(t, one, false)), frame(wire(t, two, false))...)

	r := bufio.NewReader(bytes.NewReader(stream))
	for i, want := range []bsmsg.BitSwapMessage{one, two} {
		got, l, err := readMessage(r)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		l.release()
		if messageText(got) != messageText(want) {
			t.Fatalf("message %d: got\n%s\nwant\n%s", i, messageText(got), messageText(want))
		}
	}
	if _, _, err := readMessage(r); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}

	for _, c := range []struct {
		name, want string
		stream     []byte
	}{
		{"cut in the length", "length", []byte{0x80}},
		{"cut in the message", "unexpected EOF", stream[:100]},
		{"over the limit", "over the limit", binary.AppendUvarint(nil, maxMessage+1)},
		{"not a message", "bitswap message", frame([]byte{0x0a, 0x05, 0x01})},
	} {
		_, _, err := readMessage(bufio.NewReader(bytes.NewReader(c.stream)))
		if err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error about %q", c.name, err, c.want)
		}
	}
}

// TestReadsItsStreams fetches a file between two real hosts and checks
// that the messages came through handleStream, not boxo's handler.
func TestReadsItsStreams(t *testing.T) {
	hs := hosttest.Hosts(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var svcs []*Service
	for _, h := range hs {
		st, err := OpenStore("")
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
	data := make([]byte, 5*ChunkSize+7)
	for i := range data {
		data[i] = byte(i * 13)
	}
	c, err := svcs[0].Add(ctx, bytes.NewReader(data), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := svcs[1].Get(ctx, c.String())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fetched %d of %d bytes: %v", len(got), len(data), err)
	}
	// The fetcher read the blocks, the provider the wants.
	for i, s := range svcs {
		if s.net.read.Load() == 0 {
			t.Errorf("node %d read no message itself", i)
		}
	}
}
