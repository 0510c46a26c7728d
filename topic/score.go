package topic

import (
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Peer scoring: gossipsub keeps a score of each peer, and a peer whose
// messages the validator rejects sinks fast: each topic counts invalid
// deliveries, squared and weighted heavily, so a handful of rejected
// messages take a peer under the gossip, publish and graylist thresholds,
// after which the router ignores everything it sends (its RPCs are
// dropped before any message in them is decoded or checked). The counter
// decays over minutes. Positive credit (time in the mesh, first
// deliveries) is small and capped, so no peer can bank enough of it to
// afford a flood. IP colocation is not scored: test clusters and a
// user's own nodes share addresses.

const (
	gossipThreshold   = -100
	publishThreshold  = -500
	graylistThreshold = -1000
	// invalidWeight makes 4 rejected messages cross graylistThreshold.
	invalidWeight = -100
)

func scoreParams() (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	p := &pubsub.PeerScoreParams{
		Topics:                 map[string]*pubsub.TopicScoreParams{},
		AppSpecificScore:       func(peer.ID) float64 { return 0 },
		AppSpecificWeight:      1,
		BehaviourPenaltyWeight: -10,
		// A peer may break a few protocol rules (a broken promise of
		// gossip) before it is penalised.
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:             pubsub.DefaultDecayInterval,
		DecayToZero:               pubsub.DefaultDecayToZero,
		RetainScore:               10 * time.Minute,
		SeenMsgTTL:                seenTTL,
	}
	t := &pubsub.PeerScoreThresholds{
		GossipThreshold:             gossipThreshold,
		PublishThreshold:            publishThreshold,
		GraylistThreshold:           graylistThreshold,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 5,
	}
	return p, t
}

// topicScore is each topic's part of a peer's score.
func topicScore() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight:                    1,
		TimeInMeshWeight:               0.01,
		TimeInMeshQuantum:              time.Second,
		TimeInMeshCap:                  100,
		FirstMessageDeliveriesWeight:   0.1,
		FirstMessageDeliveriesDecay:    pubsub.ScoreParameterDecay(time.Minute),
		FirstMessageDeliveriesCap:      100,
		InvalidMessageDeliveriesWeight: invalidWeight,
		InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(10 * time.Minute),
	}
}
