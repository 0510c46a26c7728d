package topic

import (
	"context"
	"time"

	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/remote"
)

// The calls between publishers, subscribers and holders.
type (
	// caller is who a reader says it is: its node's cert (naming its
	// user) and its user's grant chain on the topic's space (empty for
	// the owner). A holder serves reads, consumers and info only to a
	// caller whose chain gives its user the Subscribe right now.
	caller struct {
		Cert  *nodecert.Cert `cbor:"1,keyasint,omitempty"`
		Chain [][]byte       `cbor:"2,keyasint,omitempty"`
	}
	// pubReq carries the publishes a node has under way to one topic
	// at once: one call, and one batch on the holder.
	pubReq struct {
		Topic string    `cbor:"1,keyasint"`
		Msgs  []pubItem `cbor:"2,keyasint"`
		// Config is the topic's config signed by its owner, for a holder
		// that may not read the topic's space (openConfig checks it).
		Config []byte `cbor:"5,keyasint,omitempty"`
	}
	pubItem struct {
		Raw   []byte `cbor:"1,keyasint"`
		Nonce string `cbor:"2,keyasint,omitempty"` // dedups a retry of a publish with no ID
	}
	pubReply struct {
		Acks      []pubAck `cbor:"1,keyasint,omitempty"`
		NotHolder bool     `cbor:"3,keyasint,omitempty"`
		Leader    string   `cbor:"4,keyasint,omitempty"`
	}
	pubAck struct {
		Offset uint64 `cbor:"1,keyasint,omitempty"`
		Dup    bool   `cbor:"2,keyasint,omitempty"`
		Fail   uint8  `cbor:"3,keyasint,omitempty"` // failNotAuthorised, …
		Err    string `cbor:"4,keyasint,omitempty"`
	}
	readReq struct {
		Topic string `cbor:"1,keyasint"`
		From  uint64 `cbor:"2,keyasint,omitempty"`
		Kind  uint8  `cbor:"3,keyasint,omitempty"` // 0 offset From, 1 time Time, 2 newest
		Time  int64  `cbor:"4,keyasint,omitempty"`
		Max   int    `cbor:"5,keyasint,omitempty"`
		Wait  int64  `cbor:"6,keyasint,omitempty"` // ns to wait for a message past the end
		Who   caller `cbor:"7,keyasint"`
	}
	readReply struct {
		Msgs      []stored `cbor:"1,keyasint,omitempty"`
		First     uint64   `cbor:"2,keyasint"`
		Next      uint64   `cbor:"3,keyasint"`
		From      uint64   `cbor:"4,keyasint"` // where the read began (a time's or the newest's offset)
		NotHolder bool     `cbor:"5,keyasint,omitempty"`
	}
	fetchReq struct {
		Topic    string `cbor:"1,keyasint"`
		Consumer string `cbor:"2,keyasint"`
		Worker   string `cbor:"3,keyasint"`
		Max      int    `cbor:"4,keyasint"`
		AckWait  int64  `cbor:"5,keyasint"`
		From     uint8  `cbor:"6,keyasint,omitempty"`
		FromOff  uint64 `cbor:"7,keyasint,omitempty"`
		FromTime int64  `cbor:"8,keyasint,omitempty"`
		Wait     int64  `cbor:"9,keyasint,omitempty"`
		Config   []byte `cbor:"11,keyasint,omitempty"`
		Who      caller `cbor:"12,keyasint"`
	}
	fetchReply struct {
		Msgs      []stored `cbor:"1,keyasint,omitempty"`
		Lagged    bool     `cbor:"2,keyasint,omitempty"`
		Asked     uint64   `cbor:"3,keyasint,omitempty"`
		First     uint64   `cbor:"4,keyasint,omitempty"`
		NotHolder bool     `cbor:"5,keyasint,omitempty"`
	}
	ackReq struct {
		Topic    string   `cbor:"1,keyasint"`
		Consumer string   `cbor:"2,keyasint"`
		Worker   string   `cbor:"3,keyasint"`
		Offsets  []uint64 `cbor:"4,keyasint,omitempty"`
		Release  bool     `cbor:"5,keyasint,omitempty"`
		Who      caller   `cbor:"6,keyasint"`
	}
	ackReply struct {
		NotHolder bool `cbor:"1,keyasint,omitempty"`
	}
	infoReq struct {
		Topic string `cbor:"1,keyasint"`
		Who   caller `cbor:"2,keyasint"`
	}
	infoReply struct {
		Leader    string         `cbor:"1,keyasint,omitempty"`
		First     uint64         `cbor:"2,keyasint"`
		Next      uint64         `cbor:"3,keyasint"`
		Bytes     int64          `cbor:"4,keyasint"`
		Consumers []ConsumerInfo `cbor:"5,keyasint,omitempty"`
		NotHolder bool           `cbor:"6,keyasint,omitempty"`
	}
	wakeReq struct {
		Topic  string `cbor:"1,keyasint"`
		Join   string `cbor:"2,keyasint,omitempty"`
		Config []byte `cbor:"4,keyasint,omitempty"`
	}
	wakeReply struct {
		Applied uint64 `cbor:"1,keyasint,omitempty"`
	}
	dropReq struct {
		Topic string `cbor:"1,keyasint"`
	}
	dropReply struct{}
	moveReq   struct {
		Topic   string   `cbor:"1,keyasint"`
		Holders []string `cbor:"2,keyasint"`
	}
	moveReply struct {
		Removed []string `cbor:"1,keyasint,omitempty"`
	}
)

var (
	publishFn = remote.Declare[pubReq, pubReply]("nube.topic.publish")
	readFn    = remote.Declare[readReq, readReply]("nube.topic.read")
	fetchFn   = remote.Declare[fetchReq, fetchReply]("nube.topic.fetch")
	ackFn     = remote.Declare[ackReq, ackReply]("nube.topic.ack")
	infoFn    = remote.Declare[infoReq, infoReply]("nube.topic.loginfo")
	wakeFn    = remote.Declare[wakeReq, wakeReply]("nube.topic.wake")
	dropFn    = remote.Declare[dropReq, dropReply]("nube.topic.drop")
	moveFn    = remote.Declare[moveReq, moveReply]("nube.topic.move")
)

// Bounds of a read.
const (
	maxRead      = 1024
	maxReadBytes = 1 << 20
	maxWait      = 5 * time.Second
	// inFlight bounds the messages a consumer's subscriber holds unacked.
	inFlight = 256
)

// local returns the log of topic id if this node holds it, opening it if
// the topic's space names this node a holder.
func (d *durable) local(ctx context.Context, id string, hint []byte) (*holderLog, bool) {
	if len(id) > 2*MaxNameLen+128 {
		return nil, false
	}
	d.mu.Lock()
	l := d.logs[id]
	d.mu.Unlock()
	if l != nil {
		l.hint(hint)
		return l, true
	}
	l, err := d.openLog(ctx, id, "", hint)
	if err != nil {
		d.m.logger().Debug("not a holder of a topic", "topic", id, "err", err)
		return nil, false
	}
	return l, true
}
