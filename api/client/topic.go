package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// TopicRetention says what a durable topic keeps: the newest Count
// messages, Bytes bytes, or those younger than Age, whichever bound is
// met first. All zero: a live-only topic that keeps nothing.
type TopicRetention struct {
	Count int64         `json:"count,omitempty"`
	Bytes int64         `json:"bytes,omitempty"`
	Age   time.Duration `json:"age,omitempty"` // nanoseconds
}

// Durable reports whether r keeps messages.
func (r TopicRetention) Durable() bool { return r.Count > 0 || r.Bytes > 0 || r.Age > 0 }

// TopicCreate asks for a new topic, placed as a space is.
type TopicCreate struct {
	Name   string         `json:"name"`
	Sealed bool           `json:"sealed,omitempty"`
	Retain TopicRetention `json:"retain,omitzero"`
	SpacePolicy
}

// TopicRates are a node's counts for a topic since it started.
type TopicRates struct {
	Published uint64 `json:"published"`
	Delivered uint64 `json:"delivered"`
	Dropped   uint64 `json:"dropped"` // refused by the validator
}

// TopicConsumer is one durable consumer of a topic.
type TopicConsumer struct {
	Name    string `json:"name"`
	Acked   uint64 `json:"acked"`   // every offset below is acknowledged
	Pending int    `json:"pending"` // handed out, not acknowledged
	Lag     uint64 `json:"lag"`     // the topic's next offset minus Acked
}

// TopicInfo describes a topic, as GET /api/v0/topic/info answers.
type TopicInfo struct {
	ID        string           `json:"id"`
	Owner     string           `json:"owner"`
	Name      string           `json:"name"`
	Sealed    bool             `json:"sealed,omitempty"`
	Retain    TopicRetention   `json:"retain,omitzero"`
	Holders   []string         `json:"holders"`
	Leader    string           `json:"leader,omitempty"`
	First     uint64           `json:"first"` // the first offset held
	Next      uint64           `json:"next"`  // the offset the next message gets
	Bytes     int64            `json:"bytes"`
	Consumers []TopicConsumer  `json:"consumers"`
	Grants    []SpaceGrantInfo `json:"grants,omitempty"`
	Rates     TopicRates       `json:"rates"`
}

// TopicSummary is a topic the node owns, holds or subscribes to, as GET
// /api/v0/topic/list answers.
type TopicSummary struct {
	ID      string     `json:"id"`
	Role    string     `json:"role"` // "owner", "holder" or "subscriber"
	Durable bool       `json:"durable,omitempty"`
	Rates   TopicRates `json:"rates"`
}

// TopicAck is what a publish answers: whether a durable topic's holders
// stored it, the message's offset in that topic's log (offsets count from
// 1; zero on a live-only topic), and whether its ID was stored already.
type TopicAck struct {
	Durable   bool   `json:"durable,omitempty"`
	Offset    uint64 `json:"offset,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// TopicSubscribe says how to subscribe. From and Since exclude each
// other; neither: from the next message published. A Consumer that
// exists resumes where it left and ignores both.
type TopicSubscribe struct {
	Topic    string
	From     *uint64   // an offset of a durable topic
	Since    time.Time // the first message stored at or after it
	Consumer string
	AckWait  time.Duration // zero: the topic's default (30 s)
	// ClientAck makes each consumer delivery wait for TopicAck (it carries
	// an Ack token); otherwise the node acks a delivery once it has
	// written it to the stream.
	ClientAck bool
}

// Query is s as the subscribe endpoint's query string.
func (s TopicSubscribe) Query() url.Values {
	q := url.Values{"topic": {s.Topic}}
	if s.From != nil {
		q.Set("from", strconv.FormatUint(*s.From, 10))
	}
	if !s.Since.IsZero() {
		q.Set("since", s.Since.Format(time.RFC3339Nano))
	}
	if s.Consumer != "" {
		q.Set("consumer", s.Consumer)
	}
	if s.AckWait > 0 {
		q.Set("ack_wait", s.AckWait.String())
	}
	if s.ClientAck {
		q.Set("ack", "client")
	}
	return q
}

// TopicMessage is one line of a subscription. The first line has
// Subscribed set and nothing else: from then on, what is published
// reaches the stream. A line with Error ends the stream.
type TopicMessage struct {
	Subscribed bool      `json:"subscribed,omitempty"`
	Topic      string    `json:"topic,omitempty"`
	Offset     uint64    `json:"offset,omitempty"`
	ID         string    `json:"id,omitempty"`
	Publisher  string    `json:"publisher,omitempty"`
	Time       time.Time `json:"time,omitzero"`
	Data       []byte    `json:"data,omitempty"` // base64 in JSON
	// Ack, on a consumer's delivery with client acks, is what TopicAck
	// takes to acknowledge it.
	Ack   string `json:"ack,omitempty"`
	Error *Error `json:"error,omitempty"`
}

// TopicRef names a topic ([OWNER/]NAME) and, for revoke, a grant.
type TopicRef struct {
	Topic string `json:"topic"`
	Grant string `json:"grant,omitempty"`
}

// TopicGrantRequest asks for a grant on a topic.
type TopicGrantRequest struct {
	Topic     string    `json:"topic"`
	User      string    `json:"user"`
	Publish   bool      `json:"publish,omitempty"`
	Subscribe bool      `json:"subscribe,omitempty"`
	Delegate  bool      `json:"delegate,omitempty"`
	Until     time.Time `json:"until,omitzero"`
}

// TopicGrant is a grant made on a topic.
type TopicGrant struct {
	ID     string    `json:"id"`
	Token  string    `json:"token"`
	To     string    `json:"to"`
	Rights string    `json:"rights"` // "publish", "subscribe", "publish,subscribe", with ",delegate"
	Until  time.Time `json:"until,omitzero"`
}

// TopicMigrate asks to place a durable topic anew.
type TopicMigrate struct {
	Topic string `json:"topic"`
	SpacePolicy
}

// TopicProgress is a line of a migration's progress: a step done, or the
// last line, with Done or Error.
type TopicProgress struct {
	Step  string `json:"step,omitempty"`
	Done  bool   `json:"done,omitempty"`
	Error string `json:"error,omitempty"`
}

// TopicAckRequest acknowledges a consumer's delivery made with client
// acks.
type TopicAckRequest struct {
	Ack string `json:"ack"`
}

// TopicCreate makes a topic owned by the node's user.
func (c *Client) TopicCreate(ctx context.Context, req TopicCreate) (TopicInfo, error) {
	var out TopicInfo
	return out, c.Call(ctx, http.MethodPost, "/api/v0/topic/create", req, &out)
}

// TopicsList lists the topics the node owns, holds or subscribes to.
func (c *Client) TopicsList(ctx context.Context) ([]TopicSummary, error) {
	var out []TopicSummary
	return out, c.Call(ctx, http.MethodGet, "/api/v0/topic/list", nil, &out)
}

// TopicInfo describes a topic.
func (c *Client) TopicInfo(ctx context.Context, topic string) (TopicInfo, error) {
	var out TopicInfo
	return out, c.Call(ctx, http.MethodGet, "/api/v0/topic/info?"+url.Values{"topic": {topic}}.Encode(), nil, &out)
}

// TopicPublish publishes data on topic, with id (may be empty) to
// deduplicate a retried publish. On a durable topic it returns once a
// majority of the holders stored the message.
func (c *Client) TopicPublish(ctx context.Context, topic string, data []byte, id string) (TopicAck, error) {
	q := url.Values{"topic": {topic}}
	if id != "" {
		q.Set("id", id)
	}
	var out TopicAck
	return out, c.send(ctx, http.MethodPost, "/api/v0/topic/publish?"+q.Encode(), "application/octet-stream", bytes.NewReader(data), &out)
}

// TopicSubscribe yields a subscription's lines as NDJSON brings them,
// until ctx ends or the node ends the stream: first a line with
// Subscribed, then the messages. An error line ends it as an error that
// errors.Is matches with its code's sentinels (a consumer behind the
// retention: client.ErrConflict, topic.ErrLagged).
func (c *Client) TopicSubscribe(ctx context.Context, req TopicSubscribe) iter.Seq2[TopicMessage, error] {
	return func(yield func(TopicMessage, error) bool) {
		// NDJSON is what the node answers unless asked for server-sent
		// events.
		resp, err := c.do(ctx, http.MethodGet, "/api/v0/topic/subscribe?"+req.Query().Encode(), "", nil)
		if err != nil {
			yield(TopicMessage{}, err)
			return
		}
		defer resp.Body.Close()
		decodeTopicStream(resp.Body, ctx.Err, yield)
	}
}

// decodeTopicStream yields the lines of a subscription's NDJSON stream
// from r, each capped at MaxTopicLine, until r ends, a line is an error,
// or yield says stop. A read error is yielded unless ctxErr says the
// stream was ended on purpose.
func decodeTopicStream(r io.Reader, ctxErr func() error, yield func(TopicMessage, error) bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxTopicLine)
	for sc.Scan() {
		var m TopicMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			yield(TopicMessage{}, fmt.Errorf("topic subscribe: a bad line: %w", err))
			return
		}
		if m.Error != nil {
			yield(TopicMessage{}, m.Error)
			return
		}
		if !yield(m, nil) {
			return
		}
	}
	if err := sc.Err(); err != nil && ctxErr() == nil {
		yield(TopicMessage{}, fmt.Errorf("topic subscribe: %w", err))
	}
}

// MaxTopicLine caps a line of a subscription's stream: a message of the
// largest size (1 MiB) in base64, with room for its metadata.
const MaxTopicLine = 2 << 20

// TopicAck acknowledges a consumer's delivery made with client acks (its
// Ack token).
func (c *Client) TopicAck(ctx context.Context, ack string) error {
	return c.Call(ctx, http.MethodPost, "/api/v0/topic/ack", TopicAckRequest{Ack: ack}, nil)
}

// TopicGrant lets a user publish and/or subscribe.
func (c *Client) TopicGrant(ctx context.Context, req TopicGrantRequest) (TopicGrant, error) {
	var out TopicGrant
	return out, c.Call(ctx, http.MethodPost, "/api/v0/topic/grant", req, &out)
}

// TopicRevoke ends a grant; a sealed topic's key rotates.
func (c *Client) TopicRevoke(ctx context.Context, topic, grant string) error {
	return c.Call(ctx, http.MethodPost, "/api/v0/topic/revoke", TopicRef{Topic: topic, Grant: grant}, nil)
}

// TopicMigrate places a durable topic anew, yielding its steps as it
// goes; the last line has Done or Error.
func (c *Client) TopicMigrate(ctx context.Context, req TopicMigrate) iter.Seq2[TopicProgress, error] {
	return ndjson[TopicProgress](ctx, c, http.MethodPost, "/api/v0/topic/migrate", req)
}

// TopicDelete deletes a topic and everything it kept.
func (c *Client) TopicDelete(ctx context.Context, topic string) error {
	return c.Call(ctx, http.MethodPost, "/api/v0/topic/delete", TopicRef{Topic: topic}, nil)
}
