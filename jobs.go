package nube

import (
	"context"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ipfs/go-cid"

	"github.com/nubecloud/nube/job"
	"github.com/nubecloud/nube/space"
)

// JobsDir holds the jobs this node coordinates, one file each, so that
// they resume after a restart.
const JobsDir = "jobs"

// Jobs is what a program does with map/reduce jobs this node
// coordinates. See package job for what a job guarantees, and
// MAPREDUCE.md for what its map and reduce services read and write.
type Jobs interface {
	// Run starts a job and returns it at once; Job.Wait gives its result.
	Run(ctx context.Context, spec job.Spec) (*job.Job, error)
	// Get returns a job this node coordinates.
	Get(id string) (*job.Job, error)
	// Status returns a job's state, progress and result.
	Status(id string) (job.Status, error)
	// List lists the jobs this node coordinates, newest first.
	List() []job.Status
	// Cancel stops a job.
	Cancel(id string) error
	// Logs returns a job's log, oldest first.
	Logs(id string) ([]job.LogLine, error)
	// Publish adds a job's spec as content, its services pinned to the
	// descriptors they name now, and returns the document's CID.
	Publish(ctx context.Context, name string, spec job.Spec) (cid.Cid, error)
	// Published reads a published job by its CID, or by the name it was
	// published under on this node.
	Published(ctx context.Context, ref string) (job.Published, error)
	// RunPublished runs a published job, as Run does.
	RunPublished(ctx context.Context, ref string) (*job.Job, error)
}

var _ Jobs = (*job.Manager)(nil)

// Jobs returns the node's map/reduce jobs.
func (n *Node) Jobs() Jobs { return n.jobs }

func startJobs(ctx context.Context, n *Node) error {
	dir, err := n.layerDir(JobsDir)
	if err != nil {
		return err
	}
	n.jobs, err = job.New(ctx, job.Config{
		Host:     n.host,
		Remote:   n.remote,
		Services: n.svc,
		Content:  n.content,
		Keys:     n.spaceKeys,
		Locate:   n.locate,
		Dir:      dir,
		Logger:   n.log,
		MayAsk:   n.mayAskJobs,
	})
	return err
}

// mayAskJobs is the job layer's MayAsk: a node learns which splits this
// one holds only if this node would run its maps (its own user's nodes
// this node has seen, the peers its offer names, anyone under
// OfferAnyone). A node of a user the offer names is not told: the
// question carries no certificate to tell its user by.
func (n *Node) mayAskJobs(p peer.ID) bool {
	o := n.cfg.Offer
	switch {
	case n.revoked(p) || o.NoCompute:
		return false
	case o.To == OfferAnyone || slices.Contains(o.Peers, p):
		return true
	}
	return n.nodes != nil && n.nodes.knows(p)
}

// spaceKeys lists the keys under prefix of space id (OWNER/NAME), for a
// job whose input is a space.
func (n *Node) spaceKeys(ctx context.Context, id, prefix string) ([]string, error) {
	owner, name, err := space.SplitID(id)
	if err != nil {
		return nil, err
	}
	s, err := n.spaces.Open(owner, name)
	if err != nil {
		return nil, err
	}
	items, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	return keys, nil
}
