package nube

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"filippo.io/edwards25519"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/internal/atomicfile"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/invite"
	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/remote"
)

// A user's nodes. A node is its user's by the user's cert of it
// (nodecert.Cert). A node that holds user.key makes its own cert; another
// joins through an invite that such a node made (User().Invite), and gets
// its cert over the channel libp2p authenticates, keeping no copy of the
// key. The user takes a node back with User().Remove, a signed revocation
// that the user's nodes pass to each other and check wherever a cert of
// their user is shown.

// UsersDir holds what a node knows of its user's nodes: the invites it
// made (invites.json) and the nodes and revocations it learned
// (nodes.json). A joined node's cert is at the data dir's top
// (UserCertFile), beside where user.key would be.
const UsersDir = "users"

// UserCertFile is a joined node's cert of its user, in place of user.key.
const UserCertFile = "user.cert"

// ErrNoUserKey reports an act that needs the user key on a node that
// joined its user without it: publishing a service, owning a space,
// paying or vouching, inviting or removing nodes.
var ErrNoUserKey = errcode.New(errcode.Refused, "this node holds no user key")

// User is what a program does with the user the node runs for and that
// user's other nodes.
type User interface {
	// ID is the user's ID.
	ID() peer.ID
	// HoldsKey reports whether this node holds the user key; a node that
	// joined by invite does not.
	HoldsKey() bool
	// Invite makes a one-time invite for another node to join this
	// user's nodes, good for ttl (zero: invite.DefaultTTL). It needs the
	// user key.
	Invite(ttl time.Duration) (invite.Invite, error)
	// Join makes this node one of the user's nodes that in names. The
	// node keeps the cert it gets, and acts as that user from its next
	// start: its own user key, if it made one, is set aside.
	Join(ctx context.Context, in invite.Invite) (UserNode, error)
	// Nodes lists the user's nodes this node knows, this one first.
	Nodes() []UserNode
	// Remove revokes node's cert and tells the user's nodes it can reach.
	// It needs the user key.
	Remove(ctx context.Context, node peer.ID) (UserNode, error)
}

// UserNode is one of a user's nodes as this node knows it.
type UserNode struct {
	ID      peer.ID    `json:"id"`
	User    peer.ID    `json:"user"`
	Since   time.Time  `json:"since"` // when its cert was made, or first learned
	Self    bool       `json:"self,omitempty"`
	Key     bool       `json:"key,omitempty"` // it holds user.key (known of this node only)
	Removed *time.Time `json:"removed,omitempty"`
	// Restart is set on the node a Join just made another user's: it
	// acts as that user from its next start.
	Restart bool `json:"restart,omitempty"`
}

// User returns the user the node runs for and its door to the user's
// other nodes.
func (n *Node) User() User { return (*users)(n) }

type users Node

func (u *users) n() *Node { return (*Node)(u) }

func (u *users) ID() peer.ID    { return u.userID }
func (u *users) HoldsKey() bool { return u.userKey != nil }

// joinedCert is what a joined node keeps of its user (UserCertFile).
type joinedCert struct {
	User  peer.ID       `json:"user"`
	Cert  nodecert.Cert `json:"cert"`
	Since time.Time     `json:"since"`
	Via   peer.ID       `json:"via"`
}

// keyless is the user's signer on a node that joined without the key: it
// names the user and refuses to sign. It passes for an X25519 key
// exchanger too, so that the space layer starts; opening a space's keys
// fails as signing does.
type keyless struct {
	id  peer.ID
	pub ed25519.PublicKey
	x   *ecdh.PublicKey
}

func newKeyless(id peer.ID) (*keyless, error) {
	pub, err := identity.PublicKey(id)
	if err != nil {
		return nil, err
	}
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", id, err)
	}
	x, err := ecdh.X25519().NewPublicKey(p.BytesMontgomery())
	if err != nil {
		return nil, err
	}
	return &keyless{id: id, pub: pub, x: x}, nil
}

func (k *keyless) err() error {
	return fmt.Errorf("%w: this node joined user %s without its key: do this from a node that holds %s", ErrNoUserKey, k.id, UserKeyFile)
}

func (k *keyless) Public() crypto.PublicKey { return k.pub }
func (k *keyless) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, k.err()
}
func (k *keyless) Curve() ecdh.Curve                    { return ecdh.X25519() }
func (k *keyless) PublicKey() *ecdh.PublicKey           { return k.x }
func (k *keyless) ECDH(*ecdh.PublicKey) ([]byte, error) { return nil, k.err() }
func (u *users) needKey() error {
	if u.userKey != nil {
		return nil
	}
	return u.signer.(*keyless).err()
}

// loadUser sets the node's user from the data dir: user.cert for a node
// that joined, else user.key (made if missing, unless the node is to
// join). An invite to join (Config.JoinUser) is for a node with neither.
func (n *Node) loadUser(dir string) error {
	var in *invite.Invite
	if n.cfg.JoinUser != "" {
		i, err := invite.Parse(n.cfg.JoinUser)
		if err != nil {
			return fmt.Errorf("Config.JoinUser: %w", err)
		}
		in = &i
	}
	certPath, keyPath := filepath.Join(dir, UserCertFile), filepath.Join(dir, UserKeyFile)
	if dir != "" {
		b, err := os.ReadFile(certPath)
		if err == nil {
			var jc joinedCert
			if err := json.Unmarshal(b, &jc); err != nil {
				return fmt.Errorf("%s: %w", certPath, err)
			}
			if _, err := os.Stat(keyPath); err == nil {
				return fmt.Errorf("the data dir holds both %s and %s: a node is its user's by one or the other; move one away", UserCertFile, UserKeyFile)
			}
			if in != nil && in.User != jc.User {
				return fmt.Errorf("this node joined user %s already; an invite to user %s needs a fresh data dir", jc.User, in.User)
			}
			n.joined = &jc
			n.userID = jc.User
			return n.keylessSigner()
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("user cert: %w", err)
		}
	}
	if in != nil {
		if dir != "" {
			if _, err := os.Stat(keyPath); err == nil {
				return fmt.Errorf("the data dir holds a user key of its own (%s): to join user %s, start on a fresh data dir (or 'nube user join' on the running node)", keyPath, in.User)
			}
		}
		n.pendingJoin = in
		n.userID = in.User
		return n.keylessSigner()
	}
	if dir == "" {
		n.userKey = identity.Generate()
	} else {
		var created bool
		var err error
		if n.userKey, created, err = identity.LoadOrCreate(keyPath); err != nil {
			return fmt.Errorf("user key: %w", err)
		}
		if created {
			n.log.Info("created user key", "path", keyPath)
		}
	}
	n.signer = n.userKey
	var err error
	n.userID, err = identity.ID(n.userKey.Public().(ed25519.PublicKey))
	return err
}

func (n *Node) keylessSigner() error {
	k, err := newKeyless(n.userID)
	if err != nil {
		return fmt.Errorf("user %s: %w", n.userID, err)
	}
	n.signer = k
	return nil
}

// The user layer's remote functions.
var (
	// joinFn spends an invite: the caller sends its secret, over the
	// channel libp2p authenticated, and gets its cert.
	joinFn = remote.Declare[joinReq, joinReply]("nube.user.join")
	// revokedFn hands the user's revocations to another node of the user.
	revokedFn = remote.Declare[revokedReq, struct{}]("nube.user.revoked")
)

type joinReq struct {
	Secret []byte `cbor:"1,keyasint"`
}

type joinReply struct {
	Cert        nodecert.Cert `cbor:"1,keyasint"`
	Revocations [][]byte      `cbor:"2,keyasint,omitempty"`
}

type revokedReq struct {
	Revocations [][]byte `cbor:"1,keyasint"`
}

// maxRevocations caps the revocations one call carries.
const maxRevocations = 1024

// nodeBook is what a node knows of its user's other nodes (nodes.json).
type nodeBook struct {
	path string
	mu   sync.Mutex
	s    struct {
		// User is whose nodes these are: a node that changed users
		// starts a new book.
		User    peer.ID                     `json:"user,omitempty"`
		Nodes   byPeer[time.Time]           `json:"nodes"` // since
		Revoked byPeer[nodecert.Revocation] `json:"revoked"`
	}
}

// byPeer is a map keyed by peer ID that JSON writes with the IDs' text
// form. A plain map[peer.ID] is written with the IDs' raw bytes (json
// uses a string-kinded key as it is) but read back through peer.ID's
// UnmarshalText, which refuses them: a book so written could not be
// read, and its node did not start again. Those raw keys went through
// JSON's UTF-8 repair and cannot be recovered, so reading skips a key
// that is not a peer ID; openNodeBook keys revocations by the node each
// names, and the nodes' first-seen times are learned again.
type byPeer[V any] map[peer.ID]V

func (m byPeer[V]) MarshalJSON() ([]byte, error) {
	out := make(map[string]V, len(m))
	for id, v := range m {
		out[id.String()] = v
	}
	return json.Marshal(out)
}

func (m *byPeer[V]) UnmarshalJSON(b []byte) error {
	var in map[string]V
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*m = make(byPeer[V], len(in))
	for k, v := range in {
		id, err := peer.Decode(k)
		if err != nil {
			continue // written raw by an earlier nube
		}
		(*m)[id] = v
	}
	return nil
}

// own makes the book user's: one kept for another user (before this node
// joined this one) is started afresh.
func (b *nodeBook) own(user peer.ID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.s.User == user {
		return nil
	}
	if b.s.User != "" {
		b.s.Nodes, b.s.Revoked = map[peer.ID]time.Time{}, map[peer.ID]nodecert.Revocation{}
	} else {
		// A book from before it named its user: keep only what this
		// user signed.
		for id, r := range b.s.Revoked {
			if r.User != user {
				delete(b.s.Revoked, id)
			}
		}
	}
	b.s.User = user
	return b.saveLocked()
}

func openNodeBook(path string) (*nodeBook, error) {
	b := &nodeBook{path: path}
	b.s.Nodes, b.s.Revoked = map[peer.ID]time.Time{}, map[peer.ID]nodecert.Revocation{}
	if path == "" {
		return b, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &b.s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	b.s.Nodes, b.s.Revoked = cmpOr(b.s.Nodes), cmpOr(b.s.Revoked)
	if err := b.rekeyRevoked(data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// rekeyRevoked keys each revocation of the book's text by the node it
// names, so one whose key an earlier nube wrote raw is kept.
func (b *nodeBook) rekeyRevoked(data []byte) error {
	var raw struct {
		Revoked map[string]nodecert.Revocation `json:"revoked"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	for _, r := range raw.Revoked {
		if r.Node != "" {
			b.s.Revoked[r.Node] = r
		}
	}
	return nil
}

func cmpOr[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return m
}

// saveLocked writes the book; b.mu is held.
func (b *nodeBook) saveLocked() error {
	if b.path == "" {
		return nil
	}
	return atomicfile.WriteJSON(b.path, b.s, 0o600)
}

func (b *nodeBook) add(node peer.ID, since time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.s.Nodes[node]; ok {
		return nil
	}
	b.s.Nodes[node] = since.UTC()
	return b.saveLocked()
}

// knows reports whether node is one of the user's nodes the book has
// seen.
func (b *nodeBook) knows(node peer.ID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.s.Nodes[node]
	return ok
}

// revoked reports whether user removed node: a revocation another user
// signed (kept from before this node changed users) does not count.
func (b *nodeBook) revoked(user, node peer.ID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.s.Revoked[node]
	return ok && r.User == user
}

// learn adds the revocations of user among rs that it lacks, and says how
// many were new.
func (b *nodeBook) learn(user peer.ID, rs [][]byte) (int, error) {
	var good []nodecert.Revocation
	for _, raw := range rs {
		r, err := nodecert.DecodeRevocation(raw)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", errcode.ErrBadRequest, err)
		}
		if r.User != user {
			continue // another user's: none of this node's business
		}
		good = append(good, r)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, r := range good {
		if _, ok := b.s.Revoked[r.Node]; !ok {
			b.s.Revoked[r.Node] = r
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	return n, b.saveLocked()
}

func (b *nodeBook) encoded() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([][]byte, 0, len(b.s.Revoked))
	for _, r := range b.s.Revoked {
		if e, err := r.Encode(); err == nil {
			out = append(out, e)
		}
	}
	return out
}

// startUser is the user layer: it joins the user an invite names, if the
// node is to, makes or loads the cert that makes this node its user's,
// and serves invites and revocations to the user's other nodes.
func startUser(ctx context.Context, n *Node) error {
	dir, err := n.layerDir(UsersDir)
	if err != nil {
		return err
	}
	inv, book := "", ""
	if dir != "" {
		inv, book = filepath.Join(dir, "invites.json"), filepath.Join(dir, "nodes.json")
	}
	if n.invites, err = invite.Open(inv); err != nil {
		return err
	}
	if n.nodes, err = openNodeBook(book); err != nil {
		return fmt.Errorf("user's nodes: %w", err)
	}
	if n.pendingJoin != nil {
		if _, err := n.join(ctx, *n.pendingJoin); err != nil {
			return err
		}
		n.pendingJoin = nil
	}
	owner := n.userID
	if n.joined != nil {
		owner = n.joined.User
	}
	if err := n.nodes.own(owner); err != nil {
		return fmt.Errorf("user's nodes: %w", err)
	}
	if n.joined != nil {
		c := n.joined.Cert
		n.cert = &c
		n.nodes.add(n.joined.Via, n.joined.Since)
	} else {
		c, err := nodecert.New(n.userKey, n.host.ID())
		if err != nil {
			return err
		}
		n.cert = &c
	}
	n.unserveUser = []func(){
		remote.Handle(n.remote, joinFn, n.serveJoin),
		remote.Handle(n.remote, revokedFn, n.serveRevoked),
	}
	return nil
}

func closeUser(n *Node) error {
	for _, stop := range n.unserveUser {
		stop()
	}
	n.unserveUser = nil
	return nil
}

// join spends the invite in at its inviter and keeps the cert it gets:
// from then on this node is one of the invite's user's nodes.
func (n *Node) join(ctx context.Context, in invite.Invite) (UserNode, error) {
	if in.Expired(time.Now()) {
		return UserNode{}, fmt.Errorf("%w at %s: ask for a new one", invite.ErrExpired, time.Unix(in.Expires, 0).Format(time.RFC3339))
	}
	if in.Peer == n.host.ID() {
		return UserNode{}, fmt.Errorf("%w: the invite is this node's own", errcode.ErrBadRequest)
	}
	if n.joined != nil {
		return UserNode{}, fmt.Errorf("%w: this node joined user %s already", errcode.ErrConflict, n.joined.User)
	}
	ai := in.AddrInfo()
	if len(ai.Addrs) > 0 {
		n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	}
	if err := n.host.Connect(network.WithAllowLimitedConn(ctx, "nube user join"), ai); err != nil {
		return UserNode{}, fmt.Errorf("%w: join user %s: dial the inviter %s: %w", errcode.ErrUnreachable, in.User, in.Peer, err)
	}
	rep, err := joinFn.At(n.remote, in.Peer).Call(ctx, joinReq{Secret: in.Secret})
	if err != nil {
		return UserNode{}, fmt.Errorf("join user %s through %s: %w", in.User, in.Peer, err)
	}
	if rep.Cert.User != in.User {
		return UserNode{}, fmt.Errorf("%w: the inviter answered with a cert of user %s, not %s", errcode.ErrConflict, rep.Cert.User, in.User)
	}
	if err := rep.Cert.Check(n.host.ID()); err != nil {
		return UserNode{}, fmt.Errorf("%w: the inviter's cert of this node: %w", errcode.ErrConflict, err)
	}
	jc := joinedCert{User: in.User, Cert: rep.Cert, Since: time.Now().UTC().Truncate(time.Second), Via: in.Peer}
	if dir := n.cfg.DataDir; dir != "" {
		if n.userKey != nil {
			// Never delete a key: whatever its user owns stays reachable
			// by putting it back.
			aside := filepath.Join(dir, fmt.Sprintf("%s.before-join-%d", UserKeyFile, time.Now().Unix()))
			if err := os.Rename(filepath.Join(dir, UserKeyFile), aside); err != nil {
				return UserNode{}, fmt.Errorf("set the node's own user key aside: %w", err)
			}
			n.log.Warn("joined another user: this node's own user key is set aside", "path", aside)
		}
		if err := atomicfile.WriteJSON(filepath.Join(dir, UserCertFile), jc, 0o600); err != nil {
			return UserNode{}, fmt.Errorf("keep the user cert: %w", err)
		}
	}
	restart := n.userKey != nil // a running node with a user of its own
	if n.nodes != nil && !restart {
		// A node that changes users keeps its book of the old user's
		// nodes until it restarts; the new user's are learnt then.
		n.nodes.add(in.Peer, jc.Since)
		if _, err := n.nodes.learn(in.User, rep.Revocations); err != nil {
			n.log.Warn("the inviter's revocations do not check", "err", err)
		}
	}
	if !restart {
		n.joined = &jc
	}
	n.log.Info("joined the user's nodes", "user", in.User, "via", in.Peer)
	return UserNode{ID: n.host.ID(), User: in.User, Since: jc.Since, Self: true, Restart: restart}, nil
}

// serveJoin spends an invite for the node calling: the invite is marked
// used before the cert is made.
func (n *Node) serveJoin(ctx context.Context, req joinReq) (joinReply, error) {
	from := remote.Caller(ctx)
	if n.userKey == nil {
		return joinReply{}, fmt.Errorf("%w: this node makes no invites", ErrNoUserKey)
	}
	if n.nodes.revoked(n.userID, from) {
		return joinReply{}, fmt.Errorf("%s: %w; it joins again only under a new node key (a fresh data dir)", from, nodecert.ErrRevoked)
	}
	if err := n.invites.Use(req.Secret, time.Now()); err != nil {
		return joinReply{}, err
	}
	c, err := nodecert.New(n.userKey, from)
	if err != nil {
		return joinReply{}, err
	}
	if err := n.nodes.add(from, time.Now()); err != nil {
		n.log.Warn("a joined node not recorded", "node", from, "err", err)
	}
	n.log.Info("a node joined the user through an invite", "node", from)
	// The joiner gets at most one call's worth of the user's removals:
	// the rest reach it with the next removal spread.
	return joinReply{Cert: c, Revocations: chunks(n.nodes.encoded(), maxRevocations)[0]}, nil
}

// serveRevoked takes revocations of this node's user from another node of
// the same user.
func (n *Node) serveRevoked(ctx context.Context, req revokedReq) (struct{}, error) {
	if len(req.Revocations) > maxRevocations {
		return struct{}{}, fmt.Errorf("%w: %d revocations in one call (the most is %d)", errcode.ErrTooLarge, len(req.Revocations), maxRevocations)
	}
	k, err := n.nodes.learn(n.userID, req.Revocations)
	if k > 0 {
		n.log.Info("learned the user's removed nodes", "new", k, "from", remote.Caller(ctx))
	}
	return struct{}{}, err
}

// revoked reports whether this node's user removed node.
func (n *Node) revoked(node peer.ID) bool { return n.nodes != nil && n.nodes.revoked(n.userID, node) }

// holder is the space layer's Holder: the user's removed nodes hold none
// of its spaces.
func (n *Node) holder(node peer.ID) error {
	if n.revoked(node) {
		return fmt.Errorf("%w by user %s", nodecert.ErrRevoked, n.userID)
	}
	return nil
}

func (u *users) Invite(ttl time.Duration) (invite.Invite, error) {
	if err := u.needKey(); err != nil {
		return invite.Invite{}, err
	}
	if ttl == 0 {
		ttl = invite.DefaultTTL
	}
	var addrs []string
	for _, a := range u.host.Addrs() {
		addrs = append(addrs, a.String())
	}
	return u.invites.New(u.host.ID(), u.userID, addrs, ttl, time.Now())
}

func (u *users) Join(ctx context.Context, in invite.Invite) (UserNode, error) {
	return u.n().join(ctx, in)
}

func (u *users) Nodes() []UserNode {
	n := u.n()
	self := UserNode{ID: n.host.ID(), User: n.userID, Self: true, Key: n.userKey != nil, Since: n.started.UTC().Truncate(time.Second)}
	if n.joined != nil {
		self.Since = n.joined.Since
	}
	n.nodes.mu.Lock()
	defer n.nodes.mu.Unlock()
	var out []UserNode
	for id, since := range n.nodes.s.Nodes {
		if id != self.ID {
			out = append(out, UserNode{ID: id, User: n.userID, Since: since})
		}
	}
	for id := range n.nodes.s.Revoked {
		if _, ok := n.nodes.s.Nodes[id]; !ok && id != self.ID {
			out = append(out, UserNode{ID: id, User: n.userID})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	out = slices.Insert(out, 0, self)
	for i := range out {
		if r, ok := n.nodes.s.Revoked[out[i].ID]; ok {
			t := time.Unix(r.At, 0).UTC()
			out[i].Removed = &t
		}
	}
	return out
}

func (u *users) Remove(ctx context.Context, node peer.ID) (UserNode, error) {
	n := u.n()
	if err := u.needKey(); err != nil {
		return UserNode{}, err
	}
	if node == n.host.ID() {
		return UserNode{}, fmt.Errorf("%w: %s is this node, which holds the user key", errcode.ErrBadRequest, node)
	}
	r, err := nodecert.Revoke(n.userKey, node, time.Now())
	if err != nil {
		return UserNode{}, err
	}
	raw, err := r.Encode()
	if err != nil {
		return UserNode{}, err
	}
	if _, err := n.nodes.learn(n.userID, [][]byte{raw}); err != nil {
		return UserNode{}, err
	}
	n.spreadRevocations(ctx)
	for _, un := range u.Nodes() {
		if un.ID == node {
			return un, nil
		}
	}
	return UserNode{ID: node, User: n.userID}, nil
}

// spreadRevocations hands every revocation this node knows to the user's
// nodes it knows and the removed ones too (so that they know), each
// connected or found within a few seconds. It is best effort: a node out
// of reach learns them when it next joins through, or hears from, a node
// that has them.
func (n *Node) spreadRevocations(ctx context.Context) {
	all := n.nodes.encoded()
	var targets []peer.ID
	n.nodes.mu.Lock()
	for id := range n.nodes.s.Nodes {
		targets = append(targets, id)
	}
	for id := range n.nodes.s.Revoked {
		if _, ok := n.nodes.s.Nodes[id]; !ok {
			targets = append(targets, id)
		}
	}
	n.nodes.mu.Unlock()
	targets = slices.DeleteFunc(targets, func(p peer.ID) bool { return p == n.host.ID() })
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, part := range chunks(all, maxRevocations) {
		for p, r := range revokedFn.OnAll(network.WithAllowLimitedConn(ctx, "nube user revoked"), n.remote, targets, revokedReq{Revocations: part}) {
			if r.Err != nil {
				n.log.Info("a node of the user did not take the revocations", "node", p, "err", r.Err)
			}
		}
	}
}

// chunks cuts rs into calls of at most size revocations each, the most
// a node takes in one.
func chunks(rs [][]byte, size int) [][][]byte {
	var out [][][]byte
	for len(rs) > size {
		out = append(out, rs[:size])
		rs = rs[size:]
	}
	return append(out, rs)
}
