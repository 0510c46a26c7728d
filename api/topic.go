package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/topic"
)

// Topic endpoints. A topic is named [OWNER/]NAME: without an owner, the
// node's own user's.
//
//	POST /api/v0/topic/create    {name, sealed, retain, local, on, replicas} → TopicInfo
//	GET  /api/v0/topic/list                                   → [TopicSummary]
//	GET  /api/v0/topic/info?topic=T                           → TopicInfo
//	POST /api/v0/topic/publish?topic=T&id=ID  body: the message → TopicAck
//	GET  /api/v0/topic/subscribe?topic=T&from=O|since=TIME&consumer=C&ack_wait=D&ack=client
//	                             → NDJSON TopicMessage, or server-sent events
//	                               with Accept: text/event-stream
//	POST /api/v0/topic/ack       {ack}  acknowledges a delivery made with ack=client
//	POST /api/v0/topic/grant     {topic, user, publish, subscribe, delegate, until} → TopicGrant
//	POST /api/v0/topic/revoke    {topic, grant}
//	POST /api/v0/topic/migrate   {topic, local, on, replicas} → NDJSON TopicProgress
//	POST /api/v0/topic/delete    {topic}
//
// A consumer's deliveries are acknowledged in one of two ways. By
// default the node acks each message once it has written it to the
// stream and flushed it: the HTTP client gets every message at least
// once, but one the client loses after the write is not sent again.
// With ack=client, each delivery carries an ack token and waits for POST
// /api/v0/topic/ack; past the consumer's ack wait it goes again (to this
// stream or another subscriber of the consumer). At most maxUnacked
// deliveries of one stream wait for their acks: then the stream waits
// too, as JetStream's max-ack-pending does.
func (s *Server) topicRoutes(mux *router) {
	mux.HandleFunc("POST /api/v0/topic/create", s.handleTopicCreate)
	mux.HandleFunc("GET /api/v0/topic/list", s.handleTopicList)
	mux.HandleFunc("GET /api/v0/topic/info", s.handleTopicInfo)
	mux.HandleFunc("POST /api/v0/topic/publish", s.handleTopicPublish)
	mux.HandleFunc("GET /api/v0/topic/subscribe", s.handleTopicSubscribe)
	mux.HandleFunc("POST /api/v0/topic/ack", s.handleTopicAck)
	mux.HandleFunc("POST /api/v0/topic/grant", s.handleTopicGrant)
	mux.HandleFunc("POST /api/v0/topic/revoke", s.topicAction(func(ctx context.Context, t *topic.Topic, req client.TopicRef) error {
		return t.Revoke(ctx, req.Grant)
	}))
	mux.HandleFunc("POST /api/v0/topic/migrate", s.handleTopicMigrate)
	mux.HandleFunc("POST /api/v0/topic/delete", s.topicAction(func(ctx context.Context, t *topic.Topic, _ client.TopicRef) error {
		return t.Delete(ctx)
	}))
}

// maxUnacked caps the deliveries of one stream with client acks that
// wait for their acks.
const maxUnacked = 256

// openTopic opens the topic ref names: OWNER/NAME or the node's own NAME.
func (s *Server) openTopic(ctx context.Context, ref string) (*topic.Topic, error) {
	owner := peer.ID("")
	name := ref
	if strings.Contains(ref, "/") {
		var err error
		if owner, name, err = topic.SplitID(ref); err != nil {
			return nil, fmt.Errorf("%w: %q: want NAME or OWNER/NAME, OWNER a user ID", err, ref)
		}
	}
	return s.node.Topics().Open(ctx, owner, name)
}

func topicRatesJSON(r topic.Rates) client.TopicRates { return client.TopicRates(r) }

func topicInfoJSON(i topic.Info) client.TopicInfo {
	out := client.TopicInfo{ID: i.ID, Owner: i.Owner.String(), Name: i.Name, Sealed: i.Sealed, Retain: client.TopicRetention(i.Retain),
		First: i.First, Next: i.Next, Bytes: i.Bytes, Holders: []string{}, Consumers: []client.TopicConsumer{}, Rates: topicRatesJSON(i.Rates)}
	if i.Leader != "" {
		out.Leader = i.Leader.String()
	}
	for _, h := range i.Holders {
		out.Holders = append(out.Holders, h.String())
	}
	for _, c := range i.Consumers {
		out.Consumers = append(out.Consumers, client.TopicConsumer(c))
	}
	for _, g := range i.Grants {
		out.Grants = append(out.Grants, client.SpaceGrantInfo{ID: g.ID, To: g.To.String(), Issuer: g.Issuer.String(), Rights: g.Rights, Until: g.Until})
	}
	return out
}

func topicSummaries(ss []topic.Summary) []client.TopicSummary {
	out := []client.TopicSummary{}
	for _, x := range ss {
		out = append(out, client.TopicSummary{ID: x.ID, Role: x.Role, Durable: x.Durable, Rates: topicRatesJSON(x.Rates)})
	}
	return out
}

func (s *Server) handleTopicCreate(w http.ResponseWriter, r *http.Request) {
	var req client.TopicCreate
	if !readJSON(w, r, &req) {
		return
	}
	pol, err := parsePolicy(req.SpacePolicy)
	if err != nil {
		codedError(w, err)
		return
	}
	opts := topic.Options{Sealed: req.Sealed, Retain: topic.Retention(req.Retain), Placement: pol}
	t, err := s.node.Topics().Create(r.Context(), req.Name, opts)
	if err != nil {
		codedError(w, err)
		return
	}
	info, err := t.Info(r.Context())
	if err != nil {
		// The topic is made: say so with what is known, rather than
		// fail a create that happened.
		s.log.Info("topic created; its info is not to be had yet", "topic", t.ID(), "err", err)
		info = topic.Info{ID: t.ID(), Owner: t.Owner(), Name: t.Name(), Sealed: req.Sealed, Retain: opts.Retain}
	}
	writeJSON(w, topicInfoJSON(info))
}

func (s *Server) handleTopicList(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, topicSummaries(s.node.Topics().List()))
}

func (s *Server) handleTopicInfo(w http.ResponseWriter, r *http.Request) {
	t, err := s.openTopic(r.Context(), r.URL.Query().Get("topic"))
	if err != nil {
		codedError(w, err)
		return
	}
	info, err := t.Info(r.Context())
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, topicInfoJSON(info))
}

func (s *Server) handleTopicPublish(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := q.Get("id")
	if len(id) > topic.MaxIDLen {
		codedError(w, fmt.Errorf("%w: a publish ID of %d bytes, over %d", topic.ErrBadName, len(id), topic.MaxIDLen))
		return
	}
	t, err := s.openTopic(r.Context(), q.Get("topic"))
	if err != nil {
		codedError(w, err)
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, topic.MaxMessage))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = fmt.Errorf("%w: a message over %d bytes", topic.ErrTooLarge, topic.MaxMessage)
		} else {
			err = errcode.With(errcode.BadRequest, fmt.Errorf("read the message: %w", err))
		}
		codedError(w, err)
		return
	}
	ack, err := t.Publish(r.Context(), data, topic.PublishOptions{ID: id})
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, client.TopicAck(ack))
}

// subscribeRequest is a subscribe's query, read.
type subscribeRequest struct {
	opts      topic.SubscribeOptions
	clientAck bool
}

// parseSubscribe reads a subscribe's query; lastEventID, the offset an
// EventSource saw last, resumes a stream that names no start and no
// consumer after it.
func parseSubscribe(q url.Values, lastEventID string) (subscribeRequest, error) {
	var req subscribeRequest
	bad := func(format string, a ...any) (subscribeRequest, error) {
		return req, fmt.Errorf("%w: "+format, append([]any{errcode.ErrBadRequest}, a...)...)
	}
	from, since := q.Get("from"), q.Get("since")
	switch {
	case from != "" && since != "":
		return bad("from and since exclude each other: start at an offset or at a time")
	case from != "":
		o, err := strconv.ParseUint(from, 10, 64)
		if err != nil {
			return bad("from %q is not an offset", from)
		}
		req.opts.From = topic.FromOffset(o)
	case since != "":
		t, err := time.Parse(time.RFC3339Nano, since)
		if err != nil {
			return bad("since %q is not an RFC 3339 time", since)
		}
		req.opts.From = topic.FromTime(t)
	case lastEventID != "" && q.Get("consumer") == "":
		o, err := strconv.ParseUint(lastEventID, 10, 64)
		if err == nil && o > 0 {
			req.opts.From = topic.FromOffset(o + 1)
		}
	}
	req.opts.Consumer = q.Get("consumer")
	if len(req.opts.Consumer) > topic.MaxNameLen {
		return bad("consumer name of %d bytes, over %d", len(req.opts.Consumer), topic.MaxNameLen)
	}
	if d := q.Get("ack_wait"); d != "" {
		w, err := time.ParseDuration(d)
		if err != nil || w <= 0 {
			return bad("ack_wait %q is not a positive duration (30s, 2m)", d)
		}
		req.opts.AckWait = w
	}
	switch q.Get("ack") {
	case "", "auto":
	case "client":
		req.clientAck = true
	default:
		return bad("ack %q: want auto (the node acks what it wrote) or client (POST /api/v0/topic/ack)", q.Get("ack"))
	}
	if req.clientAck && req.opts.Consumer == "" {
		return bad("ack=client needs a consumer: a subscription without one acks nothing")
	}
	if req.opts.AckWait > 0 && req.opts.Consumer == "" {
		return bad("ack_wait needs a consumer")
	}
	return req, nil
}

// wantsSSE reports whether r asks for server-sent events.
func wantsSSE(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

func topicMessageJSON(m topic.Message) client.TopicMessage {
	return client.TopicMessage{Topic: m.Topic, Offset: m.Offset, ID: m.ID, Publisher: m.Publisher.String(), Time: m.Time, Data: m.Data}
}

func (s *Server) handleTopicSubscribe(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req, err := parseSubscribe(q, r.Header.Get("Last-Event-ID"))
	if err != nil {
		codedError(w, err)
		return
	}
	t, err := s.openTopic(r.Context(), q.Get("topic"))
	if err != nil {
		codedError(w, err)
		return
	}
	// The stream ends when the client goes or the server closes.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-stop:
		}
	}()
	sub, err := t.Subscribe(ctx, req.opts)
	if err != nil {
		codedError(w, err)
		return
	}
	defer sub.Close()
	send := topicStream(w, wantsSSE(r))
	if send(client.TopicMessage{Subscribed: true}) != nil {
		return
	}
	var unacked *pendingAcks
	if req.clientAck {
		unacked = s.topicAcks.open()
		defer s.topicAcks.close(unacked)
	}
	for {
		if unacked != nil && !unacked.wait(ctx) {
			return
		}
		m, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				send(client.TopicMessage{Error: errorOf(err)})
			}
			return
		}
		line := topicMessageJSON(m)
		if unacked != nil {
			line.Ack = unacked.add(m)
		}
		if send(line) != nil {
			return
		}
		if req.opts.Consumer != "" && unacked == nil {
			// Written and flushed: acked for the HTTP client, even if it
			// leaves at once (the ack must not die with its request, or
			// the message it was written comes again).
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := m.Ack(actx)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					send(client.TopicMessage{Error: errorOf(fmt.Errorf("ack offset %d: %w", m.Offset, err))})
				}
				return
			}
		}
	}
}

// topicStream writes a subscription's lines: one JSON document a line,
// or server-sent events ("subscribed", "message" with the offset as its
// ID, "error"), each flushed.
func topicStream(w http.ResponseWriter, sse bool) func(client.TopicMessage) error {
	if !sse {
		send := ndjsonWriter(w)
		return func(m client.TopicMessage) error { return send(m) }
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	fl, _ := w.(http.Flusher)
	return func(m client.TopicMessage) error {
		var b []byte
		var err error
		event, id := "message", ""
		switch {
		case m.Subscribed:
			event, b = "subscribed", []byte("{}")
		case m.Error != nil:
			event = "error"
			b, err = json.Marshal(m.Error)
		default:
			if m.Offset > 0 {
				id = "id: " + strconv.FormatUint(m.Offset, 10) + "\n"
			}
			b, err = json.Marshal(m)
		}
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: %s\n%sdata: %s\n\n", event, id, b); err != nil {
			return err
		}
		if fl != nil {
			fl.Flush()
		}
		return nil
	}
}

// ackBook keeps the deliveries of every stream with client acks that
// wait for their acks, by token.
type ackBook struct {
	mu      sync.Mutex
	streams map[string]*pendingAcks
}

// pendingAcks are one stream's deliveries waiting for their acks.
type pendingAcks struct {
	id    string
	mu    sync.Mutex
	msgs  map[uint64]topic.Message
	freed chan struct{} // a token each time an ack frees a place
}

func (b *ackBook) open() *pendingAcks {
	raw := make([]byte, 12)
	_, _ = rand.Read(raw)
	p := &pendingAcks{id: hex.EncodeToString(raw), msgs: map[uint64]topic.Message{}, freed: make(chan struct{}, 1)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.streams == nil {
		b.streams = map[string]*pendingAcks{}
	}
	b.streams[p.id] = p
	return p
}

func (b *ackBook) close(p *pendingAcks) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.streams, p.id)
}

// take removes the delivery token names, and returns it.
func (b *ackBook) take(token string) (topic.Message, bool) {
	id, off, ok := strings.Cut(token, ".")
	o, err := strconv.ParseUint(off, 10, 64)
	if !ok || err != nil {
		return topic.Message{}, false
	}
	b.mu.Lock()
	p := b.streams[id]
	b.mu.Unlock()
	if p == nil {
		return topic.Message{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.msgs[o]
	if ok {
		delete(p.msgs, o)
		select {
		case p.freed <- struct{}{}:
		default:
		}
	}
	return m, ok
}

// add keeps m until its ack and returns its token. A delivery again of
// an offset (its ack wait passed) takes the place of the first.
func (p *pendingAcks) add(m topic.Message) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs[m.Offset] = m
	return p.id + "." + strconv.FormatUint(m.Offset, 10)
}

// wait waits until fewer than maxUnacked deliveries wait for their acks;
// false if ctx ended first.
func (p *pendingAcks) wait(ctx context.Context) bool {
	for {
		p.mu.Lock()
		n := len(p.msgs)
		p.mu.Unlock()
		if n < maxUnacked {
			return true
		}
		select {
		case <-p.freed:
		case <-ctx.Done():
			return false
		}
	}
}

func (s *Server) handleTopicAck(w http.ResponseWriter, r *http.Request) {
	var req client.TopicAckRequest
	if !readJSON(w, r, &req) {
		return
	}
	m, ok := s.topicAcks.take(req.Ack)
	if !ok {
		codedError(w, fmt.Errorf("%w: no delivery waits for the ack %q: its stream ended, or it was acked", errcode.ErrNotFound, req.Ack))
		return
	}
	if err := m.Ack(r.Context()); err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

// topicRights reads a grant request's rights.
func topicRights(req client.TopicGrantRequest) (topic.Rights, string, error) {
	var rights topic.Rights
	var names []string
	if req.Publish {
		rights |= topic.Publish
		names = append(names, "publish")
	}
	if req.Subscribe {
		rights |= topic.Subscribe
		names = append(names, "subscribe")
	}
	if rights == 0 {
		return 0, "", fmt.Errorf("%w: a topic grant gives publish or subscribe (or both)", errcode.ErrBadRequest)
	}
	if req.Delegate {
		rights |= topic.Delegate
		names = append(names, "delegate")
	}
	return rights, strings.Join(names, ","), nil
}

func (s *Server) handleTopicGrant(w http.ResponseWriter, r *http.Request) {
	var req client.TopicGrantRequest
	if !readJSON(w, r, &req) {
		return
	}
	user, err := peer.Decode(req.User)
	if err != nil {
		codedError(w, fmt.Errorf("%w: user %q is not a user ID: %v", errcode.ErrBadRequest, req.User, err))
		return
	}
	rights, names, err := topicRights(req)
	if err != nil {
		codedError(w, err)
		return
	}
	t, err := s.openTopic(r.Context(), req.Topic)
	if err != nil {
		codedError(w, err)
		return
	}
	g, err := t.Grant(r.Context(), user, rights, req.Until)
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, client.TopicGrant{ID: g.ID(), Token: g.Token(), To: g.To().String(), Rights: names, Until: g.Until()})
}

// topicAction answers a POST of a TopicRef with act's outcome.
func (s *Server) topicAction(act func(ctx context.Context, t *topic.Topic, req client.TopicRef) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req client.TopicRef
		if !readJSON(w, r, &req) {
			return
		}
		t, err := s.openTopic(r.Context(), req.Topic)
		if err == nil {
			err = act(r.Context(), t, req)
		}
		if err != nil {
			codedError(w, err)
			return
		}
		writeJSON(w, struct{}{})
	}
}

func (s *Server) handleTopicMigrate(w http.ResponseWriter, r *http.Request) {
	var req client.TopicMigrate
	if !readJSON(w, r, &req) {
		return
	}
	pol, err := parsePolicy(req.SpacePolicy)
	if err != nil {
		codedError(w, err)
		return
	}
	t, err := s.openTopic(r.Context(), req.Topic)
	if err != nil {
		codedError(w, err)
		return
	}
	send := ndjsonWriter(w)
	steps := make(chan string, 64)
	done := make(chan error, 1)
	go func() {
		done <- t.Migrate(r.Context(), pol, func(step string) {
			select {
			case steps <- step:
			default: // a slow reader of progress only misses lines
			}
		})
	}()
	for {
		select {
		case st := <-steps:
			send(client.TopicProgress{Step: st})
		case err := <-done:
			// The steps sent before the end come first.
			for len(steps) > 0 {
				send(client.TopicProgress{Step: <-steps})
			}
			last := client.TopicProgress{Done: true}
			if err != nil {
				last = client.TopicProgress{Error: err.Error()}
			}
			send(last)
			return
		}
	}
}
