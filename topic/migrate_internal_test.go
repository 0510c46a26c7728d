package topic

import (
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/space"
)

// TestKeepsOne: a durable log moves only through a holder that stays.
func TestKeepsOne(t *testing.T) {
	a, b, c, home := peer.ID("a"), peer.ID("b"), peer.ID("c"), peer.ID("home")
	for _, tc := range []struct {
		name   string
		old    []peer.ID
		policy space.Policy
		ok     bool
	}{
		{"local, the home held it", []peer.ID{home}, space.Policy{Local: true}, true},
		{"local, the home did not", []peer.ID{a}, space.Policy{Local: true}, false},
		{"named, one stays", []peer.ID{a, b}, space.Policy{On: []peer.ID{b, c}}, true},
		{"named, none stays", []peer.ID{a, b}, space.Policy{On: []peer.ID{c}}, false},
		{"named plus picked: the home picks", []peer.ID{a}, space.Policy{On: []peer.ID{c}, Replicas: 2}, true},
		{"replicas only: the home keeps what it can", []peer.ID{a}, space.Policy{Replicas: 3}, true},
	} {
		err := keepsOne(tc.old, tc.policy, home)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, space.ErrBadPolicy)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
