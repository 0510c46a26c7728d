package topic

import "context"

// durable is the layer's log side. Owner: the durable-streams work.
type durable struct{}

func newDurable(ctx context.Context, m *Manager) (*durable, error) { return &durable{}, nil }

func (d *durable) close() error { return nil }
