package topic

import "context"

// live is the layer's gossipsub side. Owner: the live-fan-out work.
type live struct{}

func newLive(ctx context.Context, m *Manager) (*live, error) { return &live{}, nil }

func (l *live) close() error { return nil }
