package topic

import (
	"context"
	"crypto"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/space"
)

// MaxMessage is the largest message body a topic carries.
const MaxMessage = 1 << 20

// Config is what a Manager needs of the node.
type Config struct {
	// Host is the node's libp2p host; gossipsub runs on it.
	Host host.Host
	// Endpoint carries the topic's own calls (publish to holders, reads,
	// consumers).
	Endpoint *remote.Endpoint
	// Spaces keeps each topic's record: its owner, grants, keys and
	// placement are those of a space of the same owner (see SpaceName).
	Spaces *space.Manager
	// Groups keeps a durable topic's log in one order on its holders.
	Groups *group.Manager
	// UserKey signs the messages this node publishes for its user; Cert
	// is the user's cert of this node.
	UserKey crypto.Signer
	Cert    *nodecert.Cert
	// Dir is the layer's directory in the data dir.
	Dir string
	// Registry, if set, receives the layer's metrics.
	Registry prometheus.Registerer
	Logger   *slog.Logger
}

// Retention says what a durable topic keeps. All zero: a live-only topic
// that keeps nothing. Any bound that is set drops the oldest messages
// past it.
type Retention struct {
	Count int64         `json:"count,omitempty"`
	Bytes int64         `json:"bytes,omitempty"`
	Age   time.Duration `json:"age,omitempty"`
}

// Durable reports whether r keeps messages.
func (r Retention) Durable() bool { return r.Count > 0 || r.Bytes > 0 || r.Age > 0 }

// Options say how to create a topic.
type Options struct {
	// Sealed encrypts every message under the topic's key, which only
	// subscribers get; otherwise the topic is public to those who may
	// subscribe.
	Sealed bool
	// Retain makes the topic durable.
	Retain Retention
	// Placement says which nodes hold a durable topic (its holders form
	// its log's group); space.Policy{Local: true} keeps it on this node.
	Placement space.Policy
}

// Rights are what a topic grant allows.
type Rights uint8

// The rights.
const (
	Publish   Rights = 1
	Subscribe Rights = 2
	Delegate  Rights = 4
)

// PublishOptions qualify one publish.
type PublishOptions struct {
	// ID deduplicates: a durable topic stores a message whose ID it saw
	// within its dedup window once, and answers the repeat with the first
	// one's offset.
	ID string
}

// Ack is what a publish returns.
type Ack struct {
	// Durable reports a publish stored on a durable topic's holders.
	Durable bool `json:"durable,omitempty"`
	// Offset is the message's place in a durable topic's log: offsets
	// count from 1, so zero means none (a live-only topic's publish).
	Offset uint64 `json:"offset,omitempty"`
	// Duplicate reports a publish whose ID (or, without one, whose very
	// signed message) was stored already.
	Duplicate bool `json:"duplicate,omitempty"`
}

// Start says where a subscription begins.
type Start struct {
	kind   byte // 0 newest, 1 offset, 2 time
	offset uint64
	time   time.Time
}

// FromNewest starts with the next message published (the default).
func FromNewest() Start { return Start{} }

// FromOffset starts at offset o of a durable topic (offsets count from
// 1); FromOffset(0) starts at the first message still held.
func FromOffset(o uint64) Start { return Start{kind: 1, offset: o} }

// FromTime starts at the first message of a durable topic stored at or
// after t.
func FromTime(t time.Time) Start { return Start{kind: 2, time: t} }

// SubscribeOptions say how to subscribe.
type SubscribeOptions struct {
	// From is where to begin. A named Consumer that exists resumes
	// where it left and ignores From.
	From Start
	// Consumer names a durable consumer kept on the holders: it gets
	// each message at least once, resumes after a restart, and when
	// several subscribers share the name each message goes to one of
	// them (a work queue).
	Consumer string
	// AckWait is how long a consumer's subscriber has to Ack a message
	// before it goes to another; zero means 30 s, and at most 12 h is
	// kept (a longer one is cut to 12 h).
	AckWait time.Duration
}

// Message is one message of a topic.
type Message struct {
	Topic string `json:"topic"`
	// Offset is the message's place in a durable topic's log, counting
	// from 1; zero on a message of a live-only topic. A live subscriber
	// of a durable topic gets the offset too (the holders send it).
	Offset    uint64    `json:"offset,omitempty"`
	ID        string    `json:"id,omitempty"`
	Publisher peer.ID   `json:"publisher"`
	Time      time.Time `json:"time"`
	Data      []byte    `json:"data"`

	ack func(context.Context) error
}

// Ack tells a durable consumer the message is handled. It does nothing
// for a subscription without a consumer.
func (m Message) Ack(ctx context.Context) error {
	if m.ack == nil {
		return nil
	}
	return m.ack(ctx)
}

// Subscription is a stream of messages.
type Subscription struct {
	next  func(ctx context.Context) (Message, error)
	close func() error
}

// Next waits for the next message. A subscriber that falls behind gets
// an error wrapping ErrLagged (a *LagError on a durable topic).
func (s *Subscription) Next(ctx context.Context) (Message, error) { return s.next(ctx) }

// Close ends the subscription.
func (s *Subscription) Close() error { return s.close() }

// Info describes a topic.
type Info struct {
	ID        string            `json:"id"`
	Owner     peer.ID           `json:"owner"`
	Name      string            `json:"name"`
	Sealed    bool              `json:"sealed,omitempty"`
	Retain    Retention         `json:"retain,omitempty"`
	Holders   []peer.ID         `json:"holders,omitempty"`
	Leader    peer.ID           `json:"leader,omitempty"`
	First     uint64            `json:"first,omitempty"` // first offset held
	Next      uint64            `json:"next,omitempty"`  // offset the next message gets
	Bytes     int64             `json:"bytes,omitempty"`
	Consumers []ConsumerInfo    `json:"consumers,omitempty"`
	Grants    []space.GrantInfo `json:"grants,omitempty"`
	Rates     Rates             `json:"rates"`
}

// ConsumerInfo is one durable consumer of a topic.
type ConsumerInfo struct {
	Name    string `json:"name"`
	Acked   uint64 `json:"acked"`   // every offset below is acknowledged
	Pending int    `json:"pending"` // handed out, not acknowledged
	Lag     uint64 `json:"lag"`     // Next minus Acked
}

// Rates are this node's counts for a topic.
type Rates struct {
	Published uint64 `json:"published"`
	Delivered uint64 `json:"delivered"`
	Dropped   uint64 `json:"dropped"` // refused by the validator
}

// Summary is a topic this node owns, holds or subscribes to.
type Summary struct {
	ID      string `json:"id"`
	Role    string `json:"role"` // "owner", "holder" or "subscriber"
	Durable bool   `json:"durable,omitempty"`
	Rates   Rates  `json:"rates"`
}

// SpaceName is the name of the space that keeps topic name's record.
func SpaceName(name string) string { return "topic." + name }
