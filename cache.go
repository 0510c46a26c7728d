package nube

import (
	"context"
	"fmt"

	"github.com/nubecloud/nube/cache"
	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/space"
)

// Cache opens the node's cache of src, shared with the other nodes that
// cache the same source (see package cache for what it guarantees):
//
//	src, _ := node.SpaceSource("OWNER/NAME")
//	c, _ := node.Cache(ctx, src, cache.Options{})
//	v, _ := c.Get(ctx, "key")
//
// A cache of a source open already is returned as it is. Closing the
// node closes its caches.
func (n *Node) Cache(ctx context.Context, src cache.Source, opts cache.Options) (*cache.Cache, error) {
	return n.caches.Open(ctx, src, opts)
}

// SpaceSource is a cache source of the space id (OWNER/NAME), read under
// this node's user's grant.
func (n *Node) SpaceSource(id string) (cache.Source, error) {
	owner, name, err := space.SplitID(id)
	if err != nil {
		return nil, fmt.Errorf("cache source %q: %w", id, err)
	}
	sp, err := n.spaces.Open(owner, name)
	if err != nil {
		return nil, err
	}
	var cert nodecert.Cert
	if n.cert != nil {
		cert = *n.cert
	}
	return cache.SpaceSource(sp, cert), nil
}

// Caches returns the node's cache layer: its caches' stats, and Drop.
func (n *Node) Caches() *cache.Manager { return n.caches }

func startCaches(ctx context.Context, n *Node) error {
	var err error
	n.caches, err = cache.New(ctx, cache.Config{
		Host:       n.host,
		Remote:     n.remote,
		MaxBytes:   n.cfg.CacheMemory,
		Registerer: n.reg,
		Logger:     n.log,
	})
	return err
}
