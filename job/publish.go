package job

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/service"
)

// A job is a value that can be published, as a pipeline is: Publish
// writes its spec as a small JSON document into content, with its map and
// reduce services pinned to the descriptors their names resolve to now
// (as Pipeline.Publish pins its stages), and RunPublished runs it again
// from that document's CID, on any node that can fetch it, or by its name
// on the node that published it.

// maxPublished caps a published job's document.
const maxPublished = 64 << 10

// publishedKind marks a published job's document.
const publishedKind = "nube-job/1"

// pinPrefix labels a published job's pin: "job-spec NAME" (a result
// directory's pin is "job ID").
const pinPrefix = "job-spec "

// Published is a published job's document.
type Published struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	Spec Spec   `json:"spec"`
}

// Publish checks spec, resolves its map and reduce services to the
// descriptors they name now, and adds the job's document as content on
// this node, pinned as "job-spec NAME". It returns the document's CID:
// RunPublished runs the same job, the same code, from it. name follows
// the rules of service names (service.CheckName).
func (m *Manager) Publish(ctx context.Context, name string, spec Spec) (cid.Cid, error) {
	if err := service.CheckName(name); err != nil {
		return cid.Undef, fmt.Errorf("%w: job name: %w", ErrBadSpec, err)
	}
	if _, err := spec.withDefaults(); err != nil {
		return cid.Undef, err
	}
	for _, ref := range []*string{&spec.Map, &spec.Reduce} {
		if *ref == "" {
			continue
		}
		d, err := m.cfg.Services.Resolve(ctx, *ref)
		if err != nil {
			return cid.Undef, fmt.Errorf("job %s: service %s: %w", name, *ref, err)
		}
		*ref = d.ID().String()
	}
	b, err := json.Marshal(Published{Kind: publishedKind, Name: name, Spec: spec})
	if err != nil {
		return cid.Undef, err
	}
	return m.cfg.Content.Add(ctx, bytes.NewReader(b), content.AddOptions{Name: pinPrefix + name})
}

// Published reads the published job ref names: the CID of its document,
// or the name it was published under on this node (the newest such pin).
func (m *Manager) Published(ctx context.Context, ref string) (Published, error) {
	ref = strings.TrimSpace(ref)
	c, err := cid.Decode(ref)
	if err != nil {
		pins, perr := m.cfg.Content.Pins(ctx)
		if perr != nil {
			return Published{}, perr
		}
		var found content.Pin
		for _, p := range pins {
			if p.Name == pinPrefix+ref && (!found.CID.Defined() || p.Created.After(found.Created)) {
				found = p
			}
		}
		if !found.CID.Defined() {
			return Published{}, fmt.Errorf("%w: no job published here as %q (a job published elsewhere runs by its CID)", ErrNotFound, ref)
		}
		c = found.CID
	}
	f, err := m.cfg.Content.Get(ctx, c.String())
	if err != nil {
		return Published{}, fmt.Errorf("published job %s: %w", c, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPublished+1))
	if err != nil {
		return Published{}, fmt.Errorf("published job %s: %w", c, err)
	}
	return decodePublished(b)
}

// decodePublished reads a published job's document, refusing one that is
// too large, not one, or whose spec cannot run.
func decodePublished(b []byte) (Published, error) {
	if len(b) > maxPublished {
		return Published{}, fmt.Errorf("%w: a published job over %d bytes", ErrBadSpec, maxPublished)
	}
	var p Published
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Published{}, fmt.Errorf("%w: not a published job: %w", ErrBadSpec, err)
	}
	if p.Kind != publishedKind {
		return Published{}, fmt.Errorf("%w: kind %q, want %q", ErrBadSpec, p.Kind, publishedKind)
	}
	if _, err := p.Spec.withDefaults(); err != nil {
		return Published{}, err
	}
	return p, nil
}

// RunPublished runs the job ref names (Published), with this node as its
// coordinator.
func (m *Manager) RunPublished(ctx context.Context, ref string) (*Job, error) {
	p, err := m.Published(ctx, ref)
	if err != nil {
		return nil, err
	}
	return m.Run(ctx, p.Spec)
}
