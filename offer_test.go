package nube

import (
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/space"
)

// TestOfferAdmits checks each term of an offer: whom it serves, its price
// floor, the disk it gives others, and whom it trusts with the ledger
// (never a stranger, even when it serves anyone).
func TestOfferAdmits(t *testing.T) {
	self, user := peer.ID("self-node"), peer.ID("me")
	friend, stranger, trustedNode := peer.ID("friend"), peer.ID("stranger"), peer.ID("trusted-node")
	cheap := &service.Descriptor{Name: "cheap", Price: service.Price{PerCPUSecond: 10}}
	fair := &service.Descriptor{Name: "fair", Price: service.Price{PerCall: 5, PerCPUSecond: 100}}

	own := Offer{Users: []peer.ID{friend}, Peers: []peer.ID{trustedNode}}
	run := own.admitCompute(self, user)
	for _, ok := range []struct{ node, user peer.ID }{{self, ""}, {"n1", user}, {"n2", friend}, {trustedNode, stranger}} {
		if err := run(ok.node, ok.user, fair, false); err != nil {
			t.Errorf("the default offer refused %s of %q: %v", ok.node, ok.user, err)
		}
	}
	for _, u := range []peer.ID{stranger, ""} {
		if err := run("n3", u, fair, true); !errors.Is(err, service.ErrNotOffered) || !strings.Contains(err.Error(), "--offer-to anyone") {
			t.Errorf("the default offer and a stranger %q: %v", u, err)
		}
	}

	open := Offer{To: OfferAnyone, MinPrice: service.Price{PerCall: 1, PerCPUSecond: 100}, Disk: 1000}
	run = open.admitCompute(self, user)
	if err := run("n3", stranger, fair, true); err != nil {
		t.Errorf("an open offer refused a fair price: %v", err)
	}
	if err := run("n3", stranger, cheap, true); !errors.Is(err, service.ErrNotOffered) || !strings.Contains(err.Error(), "below this node's floor") {
		t.Errorf("an open offer and a price below its floor: %v", err)
	}
	if err := run("n4", user, cheap, false); err != nil {
		t.Errorf("the floor held back the owner's own node: %v", err)
	}
	if err := (Offer{NoCompute: true}).admitCompute(self, user)("n1", user, fair, false); !errors.Is(err, service.ErrNotOffered) {
		t.Errorf("--offer storage ran code for another node: %v", err)
	}

	hold := open.admitStorage(user)
	if err := hold(stranger, 600, 300); err != nil {
		t.Errorf("within the disk budget: %v", err)
	}
	if err := hold(stranger, 600, 500); !errors.Is(err, space.ErrNotOffered) || !strings.Contains(err.Error(), "1000 bytes this node gives others") {
		t.Errorf("past the disk budget: %v", err)
	}
	if err := own.admitStorage(user)(stranger, 1, 0); !errors.Is(err, space.ErrNotOffered) {
		t.Error("the default offer held a stranger's space")
	}
	for _, o := range []Offer{own, open} {
		if o.trustLedger(user)("n5", stranger) {
			t.Errorf("an offer to %q trusts a stranger with the ledger", o.To)
		}
	}
	if !open.trustLedger(user)("n5", user) || !(Offer{Users: []peer.ID{stranger}}).trustLedger(user)("n5", stranger) {
		t.Error("the ledger does not trust the user's own nodes, or those --trust names")
	}
	if err := (Offer{To: "everyone"}).Validate(); err == nil {
		t.Error("an offer to \"everyone\" validated")
	}
}
