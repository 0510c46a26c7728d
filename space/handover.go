package space

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/remote"
)

// A home that moves. The home signs every head; a head is the owner's
// word, so a node that holds the user key signs it as the user. A node
// that joined its user without the key cannot, so a home handed to it
// signs heads with its own node key under a delegation: a chain of home
// links, the first signed by the owner's user key, each next one by the
// node the link before named, each naming a node the owner's cert proves
// is the owner's. A head carries the chain of the node that signed it
// (head.Chain); readers check it as they check the signature. A home that
// holds the user key signs as the user again, and the chain is gone.
//
// The handover (Space.Home): the new home fetches the space while the
// old one goes on writing (prepare); then the old home, with writes
// held, signs a last head naming the new home, hands it over with the
// space's keys wrapped to the new home's node key, its filed grants and
// the nonces of the changes it applied, and stops being home: a write
// that waited for it is refused with ErrNotHome, and the writer finds the
// new home and writes again (Space.write), so none is lost and none is
// applied twice.

// homeDomain separates the links of a home's delegation.
const homeDomain = "nube space home v1\n"

// MaxHomeChain is the most links of a home's delegation: so many moves
// between nodes without the user key, after which the home moves only
// from a node that holds it.
const MaxHomeChain = 8

// maxHomeLink is the largest encoded link: a space ID, a node ID and a
// cert take under 400 bytes.
const maxHomeLink = 1024

// homeLink hands the signing of Space's heads to Node, one of the
// owner's nodes as Cert proves.
type homeLink struct {
	Space string        `cbor:"1,keyasint"`
	Node  peer.ID       `cbor:"2,keyasint"`
	Cert  nodecert.Cert `cbor:"3,keyasint"`
}

// checkChain verifies a home's delegation for the space id of owner and
// returns the node whose key signs under it (the owner if chain is
// empty).
func checkChain(owner peer.ID, id string, chain []signed) (peer.ID, error) {
	if len(chain) > MaxHomeChain {
		return "", fmt.Errorf("%w: a home delegation of %d links, over the limit of %d", ErrBadHead, len(chain), MaxHomeChain)
	}
	by := owner
	for i, s := range chain {
		if len(s.Body) > maxHomeLink {
			return "", fmt.Errorf("%w: home link %d of %d bytes, over the limit of %d", ErrBadHead, i, len(s.Body), maxHomeLink)
		}
		var l homeLink
		if err := unmarshal(s.Body, &l); err != nil {
			return "", fmt.Errorf("%w: home link %d: %v", ErrBadHead, i, err)
		}
		if l.Space != id {
			return "", fmt.Errorf("%w: home link %d is for %s, not %s", ErrBadHead, i, l.Space, id)
		}
		if l.Cert.User != owner {
			return "", fmt.Errorf("%w: home link %d names a node of %s, not of the owner", ErrBadHead, i, l.Cert.User)
		}
		if err := l.Cert.Check(l.Node); err != nil {
			return "", fmt.Errorf("%w: home link %d: %v", ErrBadHead, i, err)
		}
		if err := verify(s, homeDomain, by); err != nil {
			return "", fmt.Errorf("home link %d: %w", i, err)
		}
		by = l.Node
	}
	return by, nil
}

// chainAvoids checks that no link of chain, checked already by
// checkChain, names one of removed: a node its user removed signs no
// head, whatever delegation it was handed before.
func chainAvoids(chain []signed, removed []peer.ID) error {
	if len(removed) == 0 {
		return nil
	}
	for i, s := range chain {
		var l homeLink
		if err := unmarshal(s.Body, &l); err != nil {
			return fmt.Errorf("%w: home link %d: %v", ErrBadHead, i, err)
		}
		if slices.Contains(removed, l.Node) {
			return fmt.Errorf("%w: home link %d names %s, which its user removed", ErrNotAuthorised, i, l.Node)
		}
	}
	return nil
}

// headSigner is the key this node signs a space's heads with, and the
// chain that goes with it: the user key, with none, if it signs; else the
// node key under the chain this node was handed. o.mu is held.
func (o *owned) headSigner() (crypto.Signer, []signed, error) {
	if o.m.userSigns {
		return o.m.cfg.UserKey, nil, nil
	}
	if len(o.chain) == 0 || o.m.cfg.NodeKey == nil {
		return nil, nil, fmt.Errorf("%w: this node cannot sign the heads of %s: it joined its user without its key and holds no home's delegation (do this on a node that holds user.key, or have the home hand the space here with space home)", ErrNotHome, o.id)
	}
	return o.m.cfg.NodeKey, o.chain, nil
}

// The handover's remote calls.
var (
	// prepareHomeFn asks a node of the owner to get ready to take a
	// space's home: it fetches the space and answers with its cert.
	prepareHomeFn = remote.Declare[prepareHomeReq, prepareHomeReply]("nube.space.home.prepare")
	// takeHomeFn hands a node the home of a space.
	takeHomeFn = remote.Declare[takeHomeReq, headReply]("nube.space.home.take")
)

type prepareHomeReq struct {
	Head []byte `cbor:"1,keyasint"`
}

type prepareHomeReply struct {
	Cert nodecert.Cert `cbor:"1,keyasint"`
}

// takeHomeReq is a home handed over: the old home's last head, which
// names the new one; the delegation the new home signs under; the
// space's keys wrapped to the new home's node key; the grants filed and
// the nonces of the changes applied lately.
type takeHomeReq struct {
	Head   []byte     `cbor:"1,keyasint"`
	Chain  []signed   `cbor:"2,keyasint,omitempty"`
	Keys   []byte     `cbor:"3,keyasint"`
	Grants [][]signed `cbor:"4,keyasint,omitempty"`
	Nonces [][]byte   `cbor:"5,keyasint,omitempty"`
}

// maxNonces bounds the nonces a handover carries: a home remembers the
// changes of twice changeWindow.
const maxNonces = 1 << 20

// homeInfo is the HPKE info of a space's keys wrapped to its next home,
// so a box made for a handover is no reader's and no loan's.
func homeInfo(space string) []byte { return []byte("nube space home keys v1 " + space) }

// Home hands the space's home to the node to, another node of the owner
// (a node that joined the user without its key will do: the owner's cert
// of it proves it is the owner's). It is called on the home. Writes go on
// meanwhile: those that reach the old home while it hands over wait, and
// are then refused with ErrNotHome and written again at the new home by
// the writer (Put and Delete do it themselves). Calling it with this
// node is a no-op.
func (s *Space) Home(ctx context.Context, to peer.ID) error {
	m := s.m
	o := m.ownedSpace(s.id)
	if o == nil {
		return fmt.Errorf("%w: hand the home of %s over from its home", ErrNotHome, s.id)
	}
	if to == m.self {
		return nil
	}
	return o.handOver(ctx, to)
}

func (o *owned) handOver(ctx context.Context, to peer.ID) error {
	m := o.m
	if err := m.refused(to); err != nil {
		return err
	}
	// Ready the new home while writes go on: it fetches the space as it
	// stands, so the handover itself moves only what was written since.
	_, cur := o.current()
	hb, err := marshal(cur)
	if err != nil {
		return err
	}
	ctx = network.WithAllowLimitedConn(ctx, "space")
	r, err := prepareHomeFn.At(m.cfg.Remote, to).Call(ctx, prepareHomeReq{Head: hb})
	if err != nil {
		return fmt.Errorf("hand %s over to %s: %w", o.id, to, err)
	}
	if r.Cert.User != m.user || r.Cert.Check(to) != nil {
		return fmt.Errorf("%w: %s is not a node of user %s (no cert of it)", ErrNotAuthorised, to, m.user)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.gone != "" {
		return fmt.Errorf("%w: %s was handed to %s", ErrNotHome, o.id, o.gone)
	}
	if err := o.oversizedLocked(); err != nil {
		return err
	}
	if o.head.holds(to) {
		return fmt.Errorf("%w: %s holds a copy of %s: migrate the space off it first", ErrBadPolicy, to, o.id)
	}
	key, chain, err := o.headSigner()
	if err != nil {
		return err
	}
	link, err := sign(key, homeDomain, homeLink{Space: o.id, Node: to, Cert: r.Cert})
	if err != nil {
		return err
	}
	next := append(slices.Clone(chain), link)
	if len(next) > MaxHomeChain {
		return fmt.Errorf("%w: the home of %s moved %d times between nodes without the user key; hand it to a node that holds it", ErrBadPolicy, o.id, len(chain))
	}
	box, err := wrapKeysInfo(homeInfo(o.id), to, o.keys)
	if err != nil {
		return err
	}
	h := o.next()
	h.Home = to
	if !slices.Contains(h.Delegates, to) {
		h.Delegates = append(h.Delegates, to)
	}
	last, err := o.signLocked(h, o.keys)
	if err != nil {
		return err
	}
	req := takeHomeReq{Chain: next, Keys: box}
	if req.Head, err = marshal(last); err != nil {
		return err
	}
	for _, g := range o.grants {
		req.Grants = append(req.Grants, g.links)
	}
	for n := range o.nonces {
		req.Nonces = append(req.Nonces, []byte(n))
	}
	if _, err := takeHomeFn.At(m.cfg.Remote, to).Call(ctx, req); err != nil {
		switch o.askTaken(ctx, to, h.Seq) {
		case notTaken:
			return fmt.Errorf("hand %s over to %s: %w", o.id, to, err)
		case unknown:
			// It may be home: this node signs nothing more (two homes
			// would fork the space) and offers the handover again each
			// repair round until the new home answers (retryHandover).
			o.gone, o.pending = to, &req
			m.log.Warn("a handover's answer was lost and the new home does not answer: writes wait until it does", "space", o.id, "to", to, "err", err)
			return fmt.Errorf("%w: hand %s over to %s: it does not answer, and may have taken the home; this node signs no more heads of it and offers the handover again until it answers: %w",
				ErrUnavailable, o.id, to, err)
		}
	}
	o.letGoLocked(ctx, to, h.Seq)
	return nil
}

// Whether a node took a home, as it answers.
type taken int

const (
	unknown  taken = iota // it does not answer
	notTaken              // it answers that it has not
	hasTaken              // it has the head that names it, or a later one
)

// askTaken asks to whether it took the home of the space at seq.
func (o *owned) askTaken(ctx context.Context, to peer.ID, seq uint64) taken {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	hr, err := headFn.At(o.m.cfg.Remote, to).Call(network.WithAllowLimitedConn(hctx, "space"), headReq{Space: o.id})
	return takeOutcome(hr.Head, err, o.id, seq)
}

// takeOutcome reads the answer of the node a home was handed to, asked
// for its head of space (b, or the error err), as whether it took the
// home at seq: a node that has that head or a later one took it; one
// that answers with an older one or that it keeps no such space did not,
// and never will (it takes the home only with that head, and the call
// that carried it has ended); one that does not answer may have.
func takeOutcome(b []byte, err error, space string, seq uint64) taken {
	switch {
	case err == nil && seqOfBytes(b, space) >= seq:
		return hasTaken
	case err == nil || errors.Is(err, ErrNotFound):
		return notTaken
	}
	return unknown
}

// letGoLocked ends this node's part as home once to took it at seq: it
// forgets the space, removes its file, unpins its root and ends its
// watchers. o.mu is held.
func (o *owned) letGoLocked(ctx context.Context, to peer.ID, seq uint64) {
	m := o.m
	o.gone, o.pending = to, nil
	m.mu.Lock()
	if m.owned[o.name] == o {
		delete(m.owned, o.name)
	}
	m.mu.Unlock()
	m.noteSeen(o.id, seq)
	if p := m.path(ownedDir, fileName(o.id)); p != "" {
		if err := removeFile(p); err != nil {
			m.log.Warn("could not remove the file of a space handed over", "space", o.id, "err", err)
		}
	}
	if root, err := o.head.root(); err == nil {
		m.cfg.Content.Store().Unpin(context.WithoutCancel(ctx), root)
	}
	o.closeWatchers()
	m.log.Info("handed a space's home over", "space", o.id, "to", to, "seq", seq)
}

// retryHandover offers a handover whose answer was lost again: done when
// the new home has it, undone (this node is home again) when it answers
// that it has not.
func (o *owned) retryHandover(ctx context.Context) {
	o.mu.Lock()
	req, to := o.pending, o.gone
	o.mu.Unlock()
	if req == nil {
		return
	}
	// The user may have removed the node since (a stolen laptop that went
	// dark mid-handover): the keys and the home must not reach it, so the
	// offer is withdrawn and this node is home again, as handOver refuses
	// such a node before it offers anything.
	if err := o.m.refused(to); err != nil {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.pending == req {
			o.gone, o.pending = "", nil
			o.m.log.Warn("withdrew a pending handover to a node its user removed: this node is home again", "space", o.id, "to", to, "err", err)
		}
		return
	}
	// Not under the lock: readers still get the last head meanwhile.
	seq := seqOfBytes(req.Head, o.id)
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	_, err := takeHomeFn.At(o.m.cfg.Remote, to).Call(network.WithAllowLimitedConn(cctx, "space"), *req)
	cancel()
	outcome := hasTaken
	if err != nil {
		outcome = o.askTaken(ctx, to, seq)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending != req {
		return
	}
	switch outcome {
	case hasTaken:
		o.letGoLocked(ctx, to, seq)
	case notTaken:
		o.gone, o.pending = "", nil
		o.m.log.Info("the node a home was handed to did not take it: this node is home again", "space", o.id, "to", to)
	}
}

// seqOfBytes is the sequence number of an encoded head of space, or 0.
func seqOfBytes(b []byte, space string) uint64 {
	h, _, err := decodeHead(b, space)
	if err != nil {
		return 0
	}
	return h.Seq
}

// servePrepareHome readies this node to take a space's home: one of its
// user's, if it can sign the heads (it has the user key, or a node key
// for a delegation), and is not home of it already. It fetches the
// space's blocks and answers with its cert.
func (m *Manager) servePrepareHome(ctx context.Context, req prepareHomeReq) (prepareHomeReply, error) {
	h, _, err := decodeHead(req.Head, "")
	if err != nil {
		return prepareHomeReply{}, err
	}
	if err := m.canTake(ctx, h); err != nil {
		return prepareHomeReply{}, err
	}
	// Only the home readies a node to take its place: heads are public,
	// and a stranger's word would have this node fetch the whole space at
	// will.
	if c := remote.Caller(ctx); c != h.Home {
		return prepareHomeReply{}, fmt.Errorf("%w: %s is not the home of %s (%s is)", ErrNotAuthorised, c, h.id(), h.Home)
	}
	root, _ := h.root()
	if err := m.cfg.Content.Fetch(ctx, root, nil); err != nil {
		return prepareHomeReply{}, fmt.Errorf("fetch %s: %w", h.id(), err)
	}
	return prepareHomeReply{Cert: *m.cfg.Cert}, nil
}

// canTake says why this node may not take the home of h's space, if not.
func (m *Manager) canTake(ctx context.Context, h *head) error {
	switch {
	case h.Owner != m.user:
		return fmt.Errorf("%w: %s is not this node's user's", ErrNotAuthorised, h.id())
	case m.cfg.Cert == nil || m.cfg.NodeKey == nil:
		return fmt.Errorf("%w: this node has no cert of its user or no node key to sign heads with", ErrNotAuthorised)
	case remote.Caller(ctx) == "":
		return fmt.Errorf("%w: no caller", ErrNotAuthorised)
	case h.Seq < m.seenSeq(h.id()):
		return fmt.Errorf("%w: a head of %s at %d, older than the %d this node has seen", ErrNotAuthorised, h.id(), h.Seq, m.seenSeq(h.id()))
	}
	if o := m.ownedSpace(h.id()); o != nil {
		return fmt.Errorf("%w: this node is the home of %s already", ErrExists, h.id())
	}
	return nil
}

// serveTakeHome makes this node the home of the space handed over: it
// checks the last head names it, the delegation ends at it, and the keys
// open with its node key; pins the space; and installs the head, which
// it pushes to the holders and the DHT.
func (m *Manager) serveTakeHome(ctx context.Context, req takeHomeReq) (headReply, error) {
	h, s, err := decodeHead(req.Head, "")
	if err != nil {
		return headReply{}, err
	}
	id := h.id()
	if o := m.ownedSpace(id); o != nil {
		// Taken already (the answer was lost): the same head is fine.
		if cur, cs := o.current(); cur.Seq >= h.Seq {
			b, _ := marshal(cs)
			return headReply{Head: b}, nil
		}
	}
	if err := m.canTake(ctx, h); err != nil {
		return headReply{}, err
	}
	if err := checkTake(m.self, h, req); err != nil {
		return headReply{}, err
	}
	// The old home hands over: a delegated head names the node that
	// signed it, and that node must be the caller. A head signed with the
	// user key names none; it is the user's own word.
	if by, _ := checkChain(h.Owner, id, h.Chain); len(h.Chain) > 0 && remote.Caller(ctx) != by {
		return headReply{}, fmt.Errorf("%w: %s hands over %s, whose home is %s", ErrNotAuthorised, remote.Caller(ctx), id, by)
	}
	keys, err := unwrapKeysInfo(homeInfo(id), m.cfg.NodeKey, req.Keys)
	if err != nil {
		return headReply{}, fmt.Errorf("%w: the space's keys do not open: %v", ErrNotAuthorised, err)
	}
	if keys.epoch() != h.Epoch {
		return headReply{}, fmt.Errorf("%w: keys of epoch %d for a head at %d", ErrBadHead, keys.epoch(), h.Epoch)
	}
	grants := map[string]*Grant{}
	for _, links := range req.Grants {
		g, err := grantOf(links)
		if err != nil || g.Space() != id {
			continue
		}
		grants[g.ID()] = g
	}
	root, _ := h.root()
	if err := m.cfg.Content.Pin(ctx, root, holdPinPrefix+id, nil); err != nil {
		return headReply{}, fmt.Errorf("pin %s: %w", id, err)
	}
	o := m.newOwned(h.Name, keys)
	o.chain = req.Chain
	if m.userSigns {
		o.chain = nil
	}
	o.keyBox = req.Keys
	now := time.Now()
	for _, n := range req.Nonces {
		o.nonces[string(n)] = now
	}
	m.mu.Lock()
	if m.owned[h.Name] != nil {
		m.mu.Unlock()
		return headReply{}, fmt.Errorf("%w: this node is the home of %s already", ErrExists, id)
	}
	m.owned[h.Name] = o
	delete(m.held, id)
	m.mu.Unlock()
	o.mu.Lock()
	err = o.installLocked(ctx, h, s, nil, grants)
	o.mu.Unlock()
	if err != nil {
		m.mu.Lock()
		delete(m.owned, h.Name)
		m.mu.Unlock()
		return headReply{}, err
	}
	m.noteSeen(id, h.Seq)
	m.announce(id)
	m.log.Info("took a space's home", "space", id, "seq", h.Seq)
	return headReply{Head: req.Head}, nil
}

// checkTake checks a handover to self of the space of h, the head req
// carries, decoded and verified: the head names self as the home, the
// delegation ends at self and extends the one the head is signed under,
// and the nonces are within their cap. It does no I/O, so a fuzzer
// drives it.
func checkTake(self peer.ID, h *head, req takeHomeReq) error {
	if h.Home != self {
		return fmt.Errorf("%w: the head hands %s to %s, not this node", ErrBadHead, h.id(), h.Home)
	}
	if len(req.Nonces) > maxNonces {
		return fmt.Errorf("%w: %d nonces, over the limit of %d", ErrBadChange, len(req.Nonces), maxNonces)
	}
	by, err := checkChain(h.Owner, h.id(), req.Chain)
	if err != nil {
		return err
	}
	if by != self || !chainExtends(req.Chain, h.Chain) {
		return fmt.Errorf("%w: the delegation does not end at this node or does not extend the old home's", ErrBadHead)
	}
	return chainAvoids(req.Chain, h.Removed)
}

// chainExtends reports whether chain is prev and one link more.
func chainExtends(chain, prev []signed) bool {
	if len(chain) != len(prev)+1 {
		return false
	}
	for i := range prev {
		if !bytes.Equal(chain[i].Body, prev[i].Body) || !bytes.Equal(chain[i].Sig, prev[i].Sig) {
			return false
		}
	}
	return true
}

// removeFile removes p; one that is gone already is fine.
func removeFile(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
