package nube

import (
	"context"

	"github.com/nubecloud/nube/names"
)

// Names is what a program does with IPNS names and DNSLink: publish under
// the user key (names.Self, the default) or a key of its own, resolve,
// read and store raw records, manage keys. See package names for what is
// guaranteed. On a node that joined its user without the user key,
// publishing under names.Self fails with ErrNoUserKey.
type Names interface {
	// Publish points key's name at value (a CID, /ipfs/… or /ipns/…).
	Publish(ctx context.Context, key, value string, opts names.PublishOptions) (names.Published, error)
	// Resolve follows an IPNS name or a DNSLink domain to an /ipfs/ path.
	Resolve(ctx context.Context, name string) (names.Resolved, error)
	// Get returns the best raw record of an IPNS name.
	Get(ctx context.Context, name string) ([]byte, error)
	// Put stores a raw record of an IPNS name once it validates.
	Put(ctx context.Context, name string, record []byte) error
	// Keys lists the keys, names.Self first.
	Keys() ([]names.Key, error)
	// Gen makes an ed25519 key.
	Gen(name string) (names.Key, error)
	// Remove deletes a key.
	Remove(name string) error
	// PublishSpace publishes the space name of this node's user as a
	// site: a UnixFS snapshot of its keys and values (each key a path),
	// pinned here, and key's name ("" for names.Self) pointed at it.
	// While the node runs, a change to the space publishes it again
	// (Config.SiteDebounce after the last of a burst). The snapshot is public.
	PublishSpace(ctx context.Context, name, key string) (SitePublished, error)
}

// namesOf is the facade's Names: the names layer, and sites.
type namesOf struct {
	*names.Manager
	sites *sites
}

func (n namesOf) PublishSpace(ctx context.Context, name, key string) (SitePublished, error) {
	return n.sites.publish(ctx, name, key)
}

// Names returns the node's names layer.
func (n *Node) Names() Names { return namesOf{n.names, n.sites} }

func closeNames(n *Node) error {
	if n.sites != nil {
		n.sites.close()
	}
	return closeIf(n.names, (*names.Manager).Close)
}

func startNames(ctx context.Context, n *Node) error {
	dir, err := n.layerDir(NamesDir)
	if err != nil {
		return err
	}
	cfg := names.Config{
		Routing:  n.host.DHT,
		UserKey:  n.signer,
		Dir:      dir,
		DNSLinks: n.cfg.DNSLinks,
		Logger:   n.log,
	}
	if n.host.IPFS != nil {
		cfg.Public = n.host.IPFS
	}
	if n.names, err = names.New(ctx, cfg); err != nil {
		return err
	}
	n.sites, err = openSites(n, dir)
	return err
}
