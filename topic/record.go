package topic

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/space"
)

// configKey is the key under which a topic's space keeps its config.
const configKey = "topic"

// config is what a topic's space keeps under configKey: what the owner
// chose at create. Placement and grants are the space's own.
type config struct {
	Sealed bool      `cbor:"1,keyasint,omitempty"`
	Retain Retention `cbor:"2,keyasint,omitempty"`
}

// maxConfig caps the config's encoding.
const maxConfig = 4 << 10

func decodeConfig(b []byte) (config, error) {
	var c config
	if len(b) > maxConfig {
		return c, fmt.Errorf("%w: topic config of %d bytes", ErrBadMessage, len(b))
	}
	if err := wire.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: topic config: %v", ErrBadMessage, err)
	}
	if c.Retain.Count < 0 || c.Retain.Bytes < 0 || c.Retain.Age < 0 {
		return c, fmt.Errorf("%w: negative retention", ErrBadMessage)
	}
	return c, nil
}

func (m *Manager) create(ctx context.Context, name string, opts Options) (*Topic, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if opts.Retain.Count < 0 || opts.Retain.Bytes < 0 || opts.Retain.Age < 0 {
		return nil, fmt.Errorf("%w: negative retention", ErrBadName)
	}
	policy := opts.Placement
	if !policy.Local && len(policy.On) == 0 && policy.Replicas == 0 {
		policy.Local = true
	}
	sp, err := m.cfg.Spaces.Create(ctx, SpaceName(name), policy)
	if errors.Is(err, space.ErrExists) {
		return nil, fmt.Errorf("%w: %s/%s", ErrExists, m.cfg.Spaces.User(), name)
	}
	if err != nil {
		return nil, err
	}
	b, err := wire.Marshal(config{Sealed: opts.Sealed, Retain: opts.Retain})
	if err != nil {
		return nil, err
	}
	if err := sp.PutBytes(ctx, configKey, b); err != nil {
		return nil, fmt.Errorf("topic %s: keep its config: %w", name, err)
	}
	return &Topic{m: m, owner: sp.Owner(), name: name, sp: sp}, nil
}

func (m *Manager) open(owner peer.ID, name string) (*Topic, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	sp, err := m.cfg.Spaces.Open(owner, SpaceName(name))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadName, err)
	}
	return &Topic{m: m, owner: sp.Owner(), name: name, sp: sp}, nil
}

// config reads the topic's config from its space.
func (t *Topic) config(ctx context.Context) (config, error) {
	b, err := t.sp.GetBytes(ctx, configKey)
	if errors.Is(err, space.ErrNotFound) {
		return config{}, fmt.Errorf("%w: %s", ErrNotFound, t.ID())
	}
	if err != nil {
		return config{}, err
	}
	return decodeConfig(b)
}

// holders returns the topic space's home and holders as its newest head
// names them.
func (t *Topic) holders(ctx context.Context) (home peer.ID, holders []peer.ID, err error) {
	info, err := t.sp.Info(ctx)
	if err != nil {
		return "", nil, err
	}
	for _, h := range info.Holders {
		holders = append(holders, h.Peer)
	}
	return info.Home, holders, nil
}

// MaxNameLen caps a topic's name (its space's name is longer by the
// prefix).
const MaxNameLen = space.MaxNameLen - len("topic.")

func checkName(name string) error {
	if name == "" || len(name) > MaxNameLen || name[0] == '.' || name[0] == '-' {
		return fmt.Errorf("%w: topic name %q: want 1 to %d letters, digits, '.', '_' or '-', not starting with '.' or '-'", ErrBadName, name, MaxNameLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%w: topic name %q: want letters, digits, '.', '_' or '-'", ErrBadName, name)
		}
	}
	return nil
}
