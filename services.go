package nube

import (
	"context"
	"io"

	"github.com/nubecloud/nube/service"
)

// Services is the node's service layer as a program uses it: what a
// service.Manager does, without its lifecycle or its sandbox runtime, which
// the node owns.
type Services interface {
	// Publish adds a module, signs its descriptor and announces it.
	Publish(ctx context.Context, code io.Reader, opt service.PublishOptions) (*service.Descriptor, error)
	// Resolve finds the descriptor a name or CID stands for.
	Resolve(ctx context.Context, ref string) (*service.Descriptor, error)
	// Find asks this node's peers for services matching query.
	Find(ctx context.Context, query string) ([]service.Info, error)
	// Known lists the catalogue's services matching query.
	Known(query string) []service.Info
	// Runs lists the latest runs this node did for callers.
	Runs() []service.Record
	// Calls lists the latest calls this node made.
	Calls() []service.CallRecord
	// Service returns the service or pipeline ref names, ready to call.
	Service(ref string) *service.Pipeline
	// Computes reports whether this node runs modules.
	Computes() bool
}

var _ Services = (*service.Manager)(nil)

// Services returns the node's service layer: publish, find, run.
func (n *Node) Services() Services { return n.svc }

// Service returns the service (or pipeline, "a | b") ref names, ready to
// call: node.Service("wc").Call(ctx, text).
func (n *Node) Service(ref string) *service.Pipeline { return n.svc.Service(ref) }
