package ledger

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestQuorumTime: the time a tick's stamps give, a table of stamps as
// members (honest, lying, absent) and strangers give them.
func TestQuorumTime(t *testing.T) {
	const m = int64(time.Minute)
	const now = 1_000 * m
	five := []party{newParty(t), newParty(t), newParty(t), newParty(t), newParty(t)}
	stranger := newParty(t)
	var members []peer.ID
	for _, p := range five {
		members = append(members, p.node)
	}
	members = slices.Sorted(slices.Values(members))
	at := func(i int, t int64) timeStamp { return stampBy(five[i], "test", t) }
	forged := at(4, now)
	forged.Time = 500 * m // signed for now, claimed for later
	for _, c := range []struct {
		name   string
		stamps []timeStamp
		want   int64
		err    error
	}{
		{"every member on time", []timeStamp{at(0, now), at(1, now), at(2, now), at(3, now), at(4, now)}, now, nil},
		{"a majority on time", []timeStamp{at(0, now), at(1, now), at(2, now)}, now, nil},
		{"two members far ahead", []timeStamp{at(0, now), at(1, now), at(2, now), at(3, now+1e6*m), at(4, now+1e6*m)}, now, nil},
		{"two members far behind", []timeStamp{at(0, 1), at(1, 1), at(2, now), at(3, now), at(4, now)}, now, nil},
		{"one ahead, one behind", []timeStamp{at(0, 1), at(1, now), at(2, now), at(3, now), at(4, now+m)}, now, nil},
		{"honest clocks apart: one of theirs", []timeStamp{at(0, now-m), at(1, now), at(2, now+m), at(3, now+1e6*m), at(4, now+1e6*m)}, now + m, nil},
		{"a majority, one of it far ahead", []timeStamp{at(0, now), at(1, now), at(2, now+1e6*m)}, now, nil},
		{"one member stamping thrice counts once", []timeStamp{at(3, now+1e6*m), at(3, now+1e6*m), at(3, now+2e6*m), at(0, now), at(1, now)}, now, nil},
		{"one member thrice is not a majority", []timeStamp{at(0, now), at(0, now), at(0, now)}, 0, ErrForged},
		{"a stranger's stamps count for nothing", []timeStamp{stampBy(stranger, "test", now+1e6*m), stampBy(stranger, "test", now+1e6*m), at(0, now), at(1, now)}, 0, ErrForged},
		{"a stamp for another ledger", []timeStamp{stampBy(five[0], "other", now), at(1, now), at(2, now)}, 0, ErrForged},
		{"a stamp whose time is not the one signed", []timeStamp{forged, at(1, now), at(2, now)}, 0, ErrForged},
		{"too few stamps", []timeStamp{at(0, now), at(1, now)}, 0, ErrForged},
		{"no stamps", nil, 0, ErrForged},
		{"too many stamps", slices.Repeat([]timeStamp{at(0, now)}, MaxMembers+1), 0, ErrMalformed},
	} {
		got, err := quorumTime("test", c.stamps, members)
		if !errors.Is(err, c.err) || (err == nil) != (c.err == nil) || got != c.want {
			t.Errorf("%s: %d, %v; want %d, %v", c.name, got, err, c.want, c.err)
		}
	}
	if _, err := quorumTime("test", []timeStamp{at(0, now)}, nil); !errors.Is(err, ErrForged) {
		t.Errorf("a ledger without members: %v", err)
	}
}

// TestTickNeedsQuorum: a tick the members did not stamp, or too few of
// them, is refused and changes nothing; a tick a majority stamped moves
// the clock to their time, a minority's lie aside.
func TestTickNeedsQuorum(t *testing.T) {
	b := newBook(t)
	alice, bob := b.vouched(testLimit), newParty(t)
	reserveRun(b, alice, bob, 100, 5*time.Minute)
	now, far := b.now.UnixNano(), b.now.Add(time.Hour).UnixNano()
	q := b.quorum()
	for _, c := range []struct {
		name   string
		stamps []timeStamp // never nil: the book would stamp a nil one
	}{
		{"no stamps", []timeStamp{}},
		{"the leader's own", b.stamps(far)},
		{"the leader's twice", append(b.stamps(far), b.stamps(far)...)},
		{"unsigned", []timeStamp{{By: q[0].node, Time: far}, {By: q[1].node, Time: far}}},
	} {
		if _, err := b.cmd(&command{Op: opTick, Time: far, Stamps: c.stamps}); !errors.Is(err, ErrForged) {
			t.Errorf("%s: %v, want %v", c.name, err, ErrForged)
		}
	}
	if _, err := b.cmd(&command{Op: opTick, Time: far, Stamps: b.stamps(far, far, now)}); err != nil {
		t.Fatal(err)
	}
	if b.m.s.Clock != far || len(b.m.s.Reserves) != 0 {
		t.Fatalf("a tick two of three members stamped an hour on: clock %v on, %d reserves", time.Duration(b.m.s.Clock-now), len(b.m.s.Reserves))
	}
}

// TestSettleAfterExpiry: on a quiet ledger no tick has returned a reserve
// past its expiry yet; a settlement once the members' clock passed it is
// refused all the same.
func TestSettleAfterExpiry(t *testing.T) {
	b := newBook(t)
	alice, bob := b.vouched(testLimit), newParty(t)
	res := reserveRun(b, alice, bob, 100, 5*time.Minute)
	b.now = b.now.Add(6 * time.Minute)
	_, err := b.tx(b.receipt(alice, bob, Receipt{Kind: Compute, ID: res.tx.Nonce, Amount: 10}, false))
	b.want(err, ErrNoReserve)
	if b.balance(bob) != 0 {
		t.Fatalf("the provider was paid %d past the reserve's expiry", b.balance(bob))
	}
}
