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
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetiface "github.com/ipfs/boxo/bitswap/network"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/encoding/protowire"
)

// The bitswap messages this node receives are read here rather than by
// boxo's network. Boxo reads a message into a pooled buffer, decodes it
// with protobuf, which copies every block out of that buffer into a slice
// of its own, and gives the buffer back: each byte fetched is copied
// once more than it need be, and allocated twice. Here a message is read
// into a buffer of exactly its size and its blocks stay where they are in
// it (RATIONALE.md, Blocks). Everything else in a message (wants,
// presences, anything unusual) is still decoded by boxo, so that what the
// rest of bitswap receives is what boxo would give it; FuzzDecodeMessage
// holds the two decoders to the same answers.

// bitswapProtocols are the protocols bsnet serves by default, which are
// the ones this node's bitswap network is made with.
var bitswapProtocols = []protocol.ID{bsnet.ProtocolBitswap, bsnet.ProtocolBitswapOneOne, bsnet.ProtocolBitswapOneZero, bsnet.ProtocolBitswapNoVers}

// maxMessage is the largest message read, as boxo's limit: libp2p's
// largest message.
const maxMessage = network.MessageSizeMax

// sharedBlockMin is the size from which a block is left in its message's
// buffer; a smaller one is copied out, so that a small block kept for a
// while (a directory, say) does not keep a whole message's buffer alive.
const sharedBlockMin = 64 << 10

// closeWait is how long closing a stream a peer opened waits for it to
// agree, in the background, as boxo's own handler does.
const closeWait = 10 * time.Second

// receiveOn has the network read the messages arriving on h itself once
// it starts, telling events of every message as boxo's handler does
// (it is the event manager the boxo network was made with).
func (w *watchedNet) receiveOn(h host.Host, events *bsnetiface.ConnectEventManager) {
	w.host, w.events = h, events
}

// handleStream reads the messages a peer sends down one stream, until it
// ends or sends one that does not decode.
func (w *watchedNet) handleStream(s network.Stream) {
	defer func() {
		go func() {
			s.SetReadDeadline(time.Now().Add(closeWait))
			s.Close()
		}()
	}()
	if len(w.receivers) == 0 {
		s.Reset()
		return
	}
	p := s.Conn().RemotePeer()
	r := bufio.NewReader(s)
	for {
		m, l, err := readMessage(r)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.Reset()
				for _, rc := range w.receivers {
					rc.ReceiveError(err)
				}
			}
			return
		}
		w.read.Add(1)
		w.events.OnMessage(p)
		// Our fetches first, as bitswap's tracer would have; then
		// bitswap, with no block in a lent buffer that its client
		// could keep (lend.go).
		w.t.receive(p, m, l)
		bm := m
		if l != nil {
			bm = forBitswap(m, w.wants)
		}
		for _, rc := range w.receivers {
			rc.ReceiveMessage(context.Background(), p, bm)
		}
		l.release()
	}
}

// readMessage reads one length-prefixed message from r. A stream that
// ends cleanly between messages gives io.EOF; anywhere else, an error
// that says where. A message of up to lentSize bytes is read into a lent
// buffer, which l holds once if blocks were left in it (the caller
// releases it) and is nil if not.
func readMessage(r *bufio.Reader) (m bsmsg.BitSwapMessage, l *lent, err error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, io.EOF
		}
		return nil, nil, fmt.Errorf("bitswap message length: %w", err)
	}
	if n > maxMessage {
		return nil, nil, fmt.Errorf("bitswap message of %d bytes: over the limit of %d", n, maxMessage)
	}
	var buf []byte
	if n <= lentSize {
		l, buf = lend(int(n))
	} else {
		buf = make([]byte, n)
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		l.release()
		return nil, nil, fmt.Errorf("bitswap message of %d bytes: %w", n, noEOF(err))
	}
	m, err = decodeMessage(buf)
	if err != nil {
		l.release()
		return nil, nil, err
	}
	if l != nil && !slices.ContainsFunc(m.Blocks(), inLent) {
		l.release()
		l = nil
	}
	return m, l, nil
}

// noEOF turns the end of a stream mid-message into the error it is.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// payload is one block of a bitswap 1.1 or 1.2 message: its CID's prefix
// and its bytes, a slice of the message.
type payload struct {
	prefix, data []byte
}

// Field numbers of bitswap's message.proto.
const (
	fieldBlocks  = 2 // repeated bytes: bitswap 1.0 blocks, CIDv0
	fieldPayload = 3 // repeated Block{prefix = 1, data = 2}
	fieldPrefix  = 1
	fieldData    = 2
)

// decodeMessage decodes buf, a whole bitswap message. Its blocks are
// slices of buf, so buf must not be reused.
func decodeMessage(buf []byte) (bsmsg.BitSwapMessage, error) {
	var rest []byte // the fields left to boxo, as they came
	var legacy [][]byte
	var payloads []payload
	for b := buf; len(b) > 0; {
		num, typ, n := protowire.ConsumeField(b)
		if n < 0 {
			return nil, fmt.Errorf("bitswap message: %w", protowire.ParseError(n))
		}
		field := b[:n]
		b = b[n:]
		if typ != protowire.BytesType || (num != fieldBlocks && num != fieldPayload) {
			rest = append(rest, field...)
			continue
		}
		v := bytesValue(field)
		if num == fieldBlocks {
			legacy = append(legacy, v)
		} else if p, ok := decodePayload(v); ok {
			payloads = append(payloads, p)
		} else {
			rest = append(rest, field...)
		}
	}
	m, err := decodeRest(rest)
	if err != nil {
		return nil, err
	}
	for _, d := range legacy {
		m.AddBlock(withChecksum(blocks.NewBlock(own(d))))
	}
	for _, p := range payloads {
		pref, err := cid.PrefixFromBytes(p.prefix)
		if err != nil {
			return nil, fmt.Errorf("bitswap message: block prefix: %w", err)
		}
		b, err := bsmsg.NewWantlistBlock(own(p.data), cid.Undef, pref)
		if err != nil {
			return nil, fmt.Errorf("bitswap message: block: %w", err)
		}
		m.AddBlock(withChecksum(b))
	}
	return m, nil
}

// decodePayload decodes a Block submessage whose fields are what a sender
// writes (prefix and data as bytes, the last of each counting, any other
// field skipped). For anything else it reports false, and the field goes
// to boxo's decoder to judge.
func decodePayload(b []byte) (payload, bool) {
	var p payload
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeField(b)
		if n < 0 {
			return payload{}, false
		}
		if num == fieldPrefix || num == fieldData {
			if typ != protowire.BytesType {
				return payload{}, false
			}
			v := bytesValue(b[:n])
			if num == fieldPrefix {
				p.prefix = v
			} else {
				p.data = v
			}
		}
		b = b[n:]
	}
	return p, true
}

// bytesValue is the value of field, a whole field of the bytes wire type
// that protowire.ConsumeField has checked.
func bytesValue(field []byte) []byte {
	_, _, n := protowire.ConsumeTag(field)
	v, _ := protowire.ConsumeBytes(field[n:])
	return v
}

// decodeRest decodes the fields of a message other than its blocks, by
// boxo's own decoder.
func decodeRest(rest []byte) (bsmsg.BitSwapMessage, error) {
	if len(rest) == 0 {
		return bsmsg.New(false), nil
	}
	framed := binary.AppendUvarint(make([]byte, 0, len(rest)+binary.MaxVarintLen64), uint64(len(rest)))
	m, _, err := bsmsg.FromNet(bytes.NewReader(append(framed, rest...)))
	if err != nil {
		return nil, fmt.Errorf("bitswap message: %w", err)
	}
	return m, nil
}

// withChecksum returns b, just hashed, with the CRC-32C its pack record
// will need if it is large enough to go to a pack (see checkedBlock).
func withChecksum(b blocks.Block) blocks.Block {
	if len(b.RawData()) < packMin {
		return b
	}
	return checkedBlock{Block: b, crc: crc32.Checksum(b.RawData(), castagnoli)}
}

// own returns d, or a copy of it if it is too small to be worth keeping
// its message's buffer for.
func own(d []byte) []byte {
	if len(d) >= sharedBlockMin {
		return d
	}
	return bytes.Clone(d)
}
