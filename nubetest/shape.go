package nubetest

import (
	"context"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	manet "github.com/multiformats/go-multiaddr/net"
)

// Link is how the link between two nodes of a cluster behaves, each
// direction alike. The zero Link is loopback as it is.
type Link struct {
	// Latency is added to each direction: a round trip gains twice it.
	Latency time.Duration
	// Loss is the share of packets lost, from 0 to 1. The links carry
	// TCP, so a lost packet is not gone: it arrives a retransmission
	// timeout later (200 ms, Linux's least, plus a round trip) and holds
	// back the data behind it, which is how loss looks to a program on
	// TCP.
	Loss float64
	// Bandwidth caps each direction, in bytes per second. Zero: no cap.
	Bandwidth int64
}

// WithShaping carries the cluster's links through a shaper whose links
// Shape sets: nodes listen on TCP only (QUIC would pass around it) and
// dial each other through the harness. At most 1 MiB is in flight each
// way on a connection, as a TCP window would allow: a link of 50 ms
// carries at most 20 MiB/s.
func WithShaping() Option { return func(o *options) { o.shaping = true } }

// Shape makes the link between nodes i and j behave as l, at once for
// the connections it carries and for new ones. The cluster must have been
// started WithShaping.
func (c *C) Shape(i, j int, l Link) {
	if !c.opts.shaping {
		c.t.Fatal("nubetest: Shape needs a cluster started WithShaping")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.links == nil {
		c.links = map[[2]int]Link{}
	}
	c.links[[2]int{min(i, j), max(i, j)}] = l
}

// Carried returns the bytes the cluster's links have carried so far, both
// ways, exactly and at once (a node's own traffic counters are sampled
// once a second). The cluster must have been started WithShaping.
func (c *C) Carried() int64 {
	if !c.opts.shaping {
		c.t.Fatal("nubetest: Carried needs a cluster started WithShaping")
	}
	return c.carried.Load()
}

// link returns how the link between nodes i and j behaves now.
func (c *C) link(i, j int) Link {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.links[[2]int{min(i, j), max(i, j)}]
}

// dialer is node i's Config.Dial under WithShaping: it dials as usual,
// and carries a connection to another node of the cluster through the
// shaper.
func (c *C) dialer(i int) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		var d net.Dialer
		raw, err := d.DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		j := c.listening(address)
		if j < 0 {
			return raw, nil
		}
		return shape(raw, func() Link { return c.link(i, j) }, &c.carried), nil
	}
}

// listening returns the index of the node that listens on address
// (host:port), or -1.
func (c *C) listening(address string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		if n == nil {
			continue
		}
		for _, a := range n.Sys().Host().Network().ListenAddresses() {
			if _, hostport, err := manet.DialArgs(a); err == nil && hostport == address {
				return i
			}
		}
	}
	return -1
}

// shapedConn is a connection whose bytes go through a link: the node
// reads and writes one end of an in-memory pipe (which keeps deadlines
// as a socket does) and two pumps carry the bytes between the pipe's
// other end and the socket.
type shapedConn struct {
	net.Conn
	raw net.Conn
}

func (s *shapedConn) LocalAddr() net.Addr  { return s.raw.LocalAddr() }
func (s *shapedConn) RemoteAddr() net.Addr { return s.raw.RemoteAddr() }

func shape(raw net.Conn, link func() Link, carried *atomic.Int64) net.Conn {
	near, far := net.Pipe()
	// Out: what the node writes, to the socket; the socket closes once
	// all of it is sent. In: what the socket brings, to the node. Only
	// the dialing end is shaped, so both directions count here.
	go pump(far, raw, link, carried, func() { raw.Close() })
	go pump(raw, far, link, carried, func() { far.Close() })
	return &shapedConn{Conn: near, raw: raw}
}

const (
	// segment is the most one read of a pump carries at a time.
	segment = 16 << 10
	// inFlight is how many segments a pump holds: 1 MiB, a TCP window.
	inFlight = 64
	// packet is the size of one TCP packet on the wire, for Loss.
	packet = 1448
	// minRTO is Linux's least retransmission timeout.
	minRTO = 200 * time.Millisecond
	// queued is how far ahead of the link a capped sender may be before
	// its writes wait, as a full socket buffer makes them.
	queued = 50 * time.Millisecond
)

// pump carries src to dst through the link. Each segment leaves when the
// link's bandwidth lets it and arrives its latency later (a lost packet in
// it, a retransmission later), never before the one ahead of it. end runs
// once everything read is written, or as soon as a write fails.
func pump(src io.Reader, dst io.Writer, link func() Link, carried *atomic.Int64, end func()) {
	type seg struct {
		b  []byte
		at time.Time
	}
	q := make(chan seg, inFlight)
	go func() {
		defer end()
		failed := false
		for s := range q {
			if failed {
				continue // drain, so that the reader is never stuck
			}
			if d := time.Until(s.at); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(s.b); err != nil {
				failed = true
				end()
			}
		}
	}()
	defer close(q)
	var free, last time.Time // when the link can send again; when the last segment arrives
	for {
		b := make([]byte, segment)
		n, err := src.Read(b)
		if n > 0 {
			if carried != nil {
				carried.Add(int64(n))
			}
			l := link()
			if now := time.Now(); now.After(free) {
				free = now
			}
			if l.Bandwidth > 0 {
				free = free.Add(time.Duration(float64(n) / float64(l.Bandwidth) * float64(time.Second)))
			}
			at := free.Add(l.Latency)
			packets := float64((n + packet - 1) / packet)
			if l.Loss > 0 && rand.Float64() < 1-math.Pow(1-l.Loss, packets) {
				at = at.Add(minRTO + 2*l.Latency)
			}
			if at.Before(last) {
				at = last
			}
			last = at
			q <- seg{b[:n], at}
			if d := time.Until(free); d > queued {
				time.Sleep(d - queued)
			}
		}
		if err != nil {
			return
		}
	}
}
