package topic

import (
	"context"
	"crypto"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/space"
)

// configKey is the key under which a topic's space keeps its config.
const configKey = "topic"

// config is what the owner chose at create, signed by the owner's user
// key (an identity.Envelope under configDomain) and kept under configKey
// in the topic's space. Placement and grants are the space's own. A
// holder, which may not read the space (it is sealed to grantees), trusts
// the config a caller brings only if it is this signed record of this
// topic by its owner (openConfig), so no caller can set a smaller
// retention than the owner's.
type config struct {
	Sealed bool      `cbor:"1,keyasint,omitempty"`
	Retain Retention `cbor:"2,keyasint,omitempty"`
	Topic  string    `cbor:"3,keyasint"` // OWNER/NAME
	Owner  peer.ID   `cbor:"4,keyasint"`

	raw []byte // the signed envelope, as calls carry it
}

// configDomain is the signature domain of a topic's config.
const configDomain = "nube topic config v1"

// Signer is the owner the config names.
func (c *config) Signer() (peer.ID, error) {
	if c.Owner == "" {
		return "", fmt.Errorf("%w: config names no owner", ErrBadMessage)
	}
	return c.Owner, nil
}

// maxConfig caps the config's encoding.
const maxConfig = 4 << 10

// signConfig makes the signed config of topic id.
func signConfig(key crypto.Signer, c config) (config, error) {
	env, err := identity.Seal(key, configDomain, &c)
	if err != nil {
		return config{}, err
	}
	if c.raw, err = wire.Marshal(env); err != nil {
		return config{}, err
	}
	return c, nil
}

// openConfig checks that raw is topic id's config signed by its owner.
func openConfig(id string, raw []byte) (config, error) {
	var c config
	if len(raw) > maxConfig {
		return c, fmt.Errorf("%w: topic config of %d bytes", ErrBadMessage, len(raw))
	}
	var env identity.Envelope
	if err := wire.Unmarshal(raw, &env); err != nil {
		return c, fmt.Errorf("%w: topic config: %v", ErrBadMessage, err)
	}
	if _, err := env.Open(configDomain, &c); err != nil {
		return config{}, fmt.Errorf("%w: topic config: %v", ErrBadMessage, err)
	}
	owner, _, err := SplitID(id)
	switch {
	case err != nil:
		return config{}, err
	case c.Topic != id || c.Owner != owner:
		return config{}, fmt.Errorf("%w: a config of %s signed by %s presented for %s", ErrNotAuthorised, c.Topic, c.Owner, id)
	case c.Retain.Count < 0 || c.Retain.Bytes < 0 || c.Retain.Age < 0:
		return config{}, fmt.Errorf("%w: negative retention", ErrBadMessage)
	}
	c.raw = raw
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
	if m.cfg.UserKey == nil {
		return nil, fmt.Errorf("topic %s: this node has no user key", name)
	}
	id := sp.Owner().String() + "/" + name
	c, err := signConfig(m.cfg.UserKey, config{Sealed: opts.Sealed, Retain: opts.Retain, Topic: id, Owner: sp.Owner()})
	if err != nil {
		return nil, err
	}
	if err := sp.PutBytes(ctx, configKey, c.raw); err != nil {
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
	return openConfig(t.ID(), b)
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
