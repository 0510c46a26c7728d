package content

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	bsnetiface "github.com/ipfs/boxo/bitswap/network"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The parallel fetcher. Bitswap's own sessions send each block's request to
// the one peer that answered fastest so far, so a download runs at the
// speed of a single provider. A fetch here keeps its own schedule instead,
// over the same bitswap wire protocol (so any bitswap peer, IPFS nodes
// included, can serve it):
//
//   - every connected peer, and every provider the DHT names, is asked
//     whether it has the root; those that say so become this fetch's
//     providers. A peer that does not is asked again later, less and less
//     often (its answer may have been lost on a loaded link, or it may
//     have the root by now), and the DHT is searched again while the
//     fetch runs: a fetch ends when its context does, never because a
//     single question went unanswered;
//   - the peers that served the blocks of the path to the root (a file
//     read by its path) are providers from the start, and so is any peer
//     that delivers a block of the DAG: a peer need not answer "have?"
//     twice (Helia 7 ignores a repeated one for 5 s);
//   - blocks are requested in DAG order, each from one provider, with a
//     window of requests in flight per provider that grows by one with
//     each block it delivers and halves when a request times out, so a
//     fast provider takes more of the work and a slow one less;
//   - a request that times out or gets a DONT_HAVE goes back to the
//     queue for another provider; a provider that keeps failing, or
//     disconnects, is dropped, and asked again a few seconds later (it
//     may only have been slow, and it may be the only one);
//   - a block is accepted only if its bytes hash to the CID asked for
//     (bitswap derives the CID from the bytes, so a corrupt block simply
//     matches nothing), and lands in the store checked.
const (
	initialWindow = 4
	maxWindow     = 64
	minTimeout    = 2 * time.Second
	maxTimeout    = 15 * time.Second
	maxStrikes    = 4
	// discoverEvery is how often a fetch with work left looks for new
	// connected peers to ask.
	discoverEvery = time.Second
	// retryDropped is how long a dropped provider waits before it is
	// asked again.
	retryDropped = 5 * time.Second
	// askAgainMin and askAgainMax bound how long a peer asked for the
	// root that did not become a provider waits before it is asked
	// again; the wait doubles each time.
	askAgainMin = 2 * time.Second
	askAgainMax = 30 * time.Second
	// searchAgainMin and searchAgainMax bound the wait between two DHT
	// searches for providers of one fetch; it doubles each time.
	searchAgainMin = 10 * time.Second
	searchAgainMax = 2 * time.Minute
)

// asking is when a peer was last asked for the root, and how many times.
type asking struct {
	at    time.Time
	times int
}

// due reports whether a peer asked as a says is to be asked again.
func (a asking) due(now time.Time) bool {
	wait := askAgainMax
	if a.times < 5 {
		wait = min(askAgainMin<<(a.times-1), askAgainMax)
	}
	return now.Sub(a.at) >= wait
}

// provider is one peer serving a fetch.
type provider struct {
	id       peer.ID
	sender   bsnetiface.MessageSender
	inflight map[cid.Cid]time.Time
	window   int
	strikes  int
	// blockTime is a moving average of the time between a request and
	// its block, for the timeout.
	blockTime time.Duration
	got       int
}

func (p *provider) timeout() time.Duration {
	return min(max(8*p.blockTime, minTimeout), maxTimeout)
}

// fetch is one DAG being fetched.
type fetch struct {
	s        *Service
	root     cid.Cid
	progress func(FetchProgress)
	// shallow fetches the root block alone, not what it links to: a
	// directory on a path being resolved.
	shallow bool
	// reader is set when a reader waits on the blocks through its
	// bitswap session: each is handed to bitswap's client (storeLent).
	reader bool
	// status is what Fetching reports, copied from the loop's state
	// under mu.
	status FetchStatus

	mu     sync.Mutex
	inbox  []fetchEvent
	wakeCh chan struct{}

	asked     map[peer.ID]asking // peers asked whether they have the root
	providers map[peer.ID]*provider
	queue     []cid.Cid
	// queued is what queue holds still to be asked for: a block that
	// arrives unasked (for a reader's bitswap session) leaves it here,
	// and its entry in queue is skipped when reached.
	queued map[cid.Cid]bool
	known  map[cid.Cid]bool // queued, in flight or done
	// seeds are peers that served blocks on the way to the root (a
	// path's directories, the root itself), taken as providers from the
	// start: a peer that has answered "have?" for the root once may not
	// answer again for a while (Helia keeps a served want for 5 s).
	seeds    []peer.ID
	excluded map[cid.Cid]map[peer.ID]bool
	dropped  map[peer.ID]time.Time // providers dropped, and when
	done     FetchProgress
}

type fetchEvent struct {
	from      peer.ID
	blocks    []blocks.Block
	haves     []cid.Cid
	dontHaves []cid.Cid
	found     *peer.AddrInfo // a provider the DHT named, now connected
	buf       *lent          // the lent buffer blocks are in, held for this fetch
}

func (f *fetch) post(ev fetchEvent) {
	f.mu.Lock()
	f.inbox = append(f.inbox, ev)
	f.mu.Unlock()
	select {
	case f.wakeCh <- struct{}{}:
	default:
	}
}

// deliver hands a received bitswap message to every fetch under way.
// The blocks in a lent buffer (l) are held for each fetch until it has
// handled them.
func (s *Service) deliver(p peer.ID, m bsmsg.BitSwapMessage, l *lent) {
	blks, haves, dont := m.Blocks(), m.Haves(), m.DontHaves()
	if len(blks) == 0 && len(haves) == 0 && len(dont) == 0 {
		return
	}
	if len(blks) == 0 {
		l = nil
	}
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	for f := range s.fetches {
		l.hold()
		f.post(fetchEvent{from: p, blocks: blks, haves: haves, dontHaves: dont, buf: l})
	}
}

// fetchDAG brings every block under root into the store. Fetches of one
// root run one at a time: two schedules asking the same providers for the
// same blocks cancel each other's requests (a provider keeps one wantlist
// per peer) and could leave both waiting on blocks no one would send. A
// second fetch waits for the first, then finds the blocks in the store.
func (s *Service) fetchDAG(ctx context.Context, root cid.Cid, progress func(FetchProgress)) error {
	return s.runFetch(ctx, &fetch{root: root, progress: progress})
}

// fetchAhead is fetchDAG ahead of a reader, starting with seeds as
// providers.
func (s *Service) fetchAhead(ctx context.Context, root cid.Cid, seeds []peer.ID) error {
	return s.runFetch(ctx, &fetch{root: root, reader: true, seeds: seeds})
}

// fetchBlock brings the block c into the store, and nothing it links to,
// with the fetcher's search for providers (so Fetching reports it).
func (s *Service) fetchBlock(ctx context.Context, c cid.Cid) error {
	return s.runFetch(ctx, &fetch{root: c, shallow: true})
}

// runFetch runs f, of which root, progress, shallow, reader and seeds
// are set.
func (s *Service) runFetch(ctx context.Context, f *fetch) error {
	root := f.root
	done, err := s.takeTurn(ctx, root)
	if err != nil {
		return err
	}
	defer done()
	f.s = s
	f.status = FetchStatus{Root: root, Started: time.Now()}
	f.wakeCh = make(chan struct{}, 1)
	f.asked = map[peer.ID]asking{}
	f.providers = map[peer.ID]*provider{}
	f.queued = map[cid.Cid]bool{}
	f.known = map[cid.Cid]bool{}
	f.seeds = append(f.seeds, s.servers.of(root)...)
	f.excluded = map[cid.Cid]map[peer.ID]bool{}
	f.dropped = map[peer.ID]time.Time{}
	s.fetchMu.Lock()
	s.fetches[f] = struct{}{}
	s.fetchMu.Unlock()
	defer func() {
		s.fetchMu.Lock()
		delete(s.fetches, f)
		s.fetchMu.Unlock()
		f.closeProviders()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if len(s.routing) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.findProviders(ctx)
		}()
	}
	return f.run(ctx)
}

// takeTurn waits until no other fetch of root runs, then marks one as
// running until done is called.
func (s *Service) takeTurn(ctx context.Context, root cid.Cid) (done func(), err error) {
	for {
		s.fetchMu.Lock()
		running, busy := s.flights[root]
		if !busy {
			mine := make(chan struct{})
			s.flights[root] = mine
			s.fetchMu.Unlock()
			return func() {
				s.fetchMu.Lock()
				delete(s.flights, root)
				s.fetchMu.Unlock()
				close(mine)
			}, nil
		}
		s.fetchMu.Unlock()
		select {
		case <-running:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// findProviders asks the DHTs for providers of the root, once the
// connected peers have had a moment to answer, and again now and then
// until the fetch ends: a provider may announce itself after the first
// search, or the first search may have met a routing table still empty.
func (f *fetch) findProviders(ctx context.Context) {
	wait := f.s.searchDelay
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		// Each provider is dialled here, off the fetch's loop: a record's
		// addresses may be stale (a node behind a NAT moves), and the
		// host then looks the peer up afresh, which takes longer than
		// the loop may wait.
		var dials sync.WaitGroup
		for ai := range f.s.routing.FindProvidersAsync(ctx, f.root, 20) {
			if ai.ID == f.s.cfg.Host.ID() {
				continue
			}
			dials.Add(1)
			go func() {
				defer dials.Done()
				cctx, cancel := context.WithTimeout(ctx, maxTimeout)
				defer cancel()
				if err := f.s.cfg.Host.Connect(cctx, ai); err == nil {
					f.post(fetchEvent{found: &ai})
				}
			}()
		}
		dials.Wait()
		if wait < searchAgainMin {
			wait = searchAgainMin
		} else {
			wait = min(2*wait, searchAgainMax)
		}
	}
}

func (f *fetch) run(ctx context.Context) error {
	if err := f.enqueue(ctx, f.root); err != nil {
		return err
	}
	for _, p := range f.seeds {
		if p != f.s.cfg.Host.ID() && f.s.cfg.Host.Network().Connectedness(p) == network.Connected {
			f.addProvider(ctx, p)
		}
	}
	tick := time.NewTicker(discoverEvery / 4)
	defer tick.Stop()
	lastDiscover := time.Time{}
	for {
		if len(f.queued) == 0 && f.inflight() == 0 {
			return nil
		}
		if time.Since(lastDiscover) >= discoverEvery {
			f.discover(ctx)
			lastDiscover = time.Now()
		}
		f.assign(ctx)
		f.report()
		select {
		case <-ctx.Done():
			if len(f.providers) == 0 {
				return fmt.Errorf("%w (%v)", ErrNoProvider, ctx.Err())
			}
			return ctx.Err()
		case <-f.wakeCh:
		case <-tick.C:
		}
		if err := f.handleInbox(ctx); err != nil {
			return err
		}
		f.checkTimeouts()
	}
}

// FetchStatus is how a fetch under way is doing.
type FetchStatus struct {
	Root    cid.Cid   `json:"-"`
	Started time.Time `json:"started"`
	// Asked is how many peers were asked whether they have the root,
	// Providers how many of them have it and serve this fetch.
	Asked     int `json:"asked"`
	Providers int `json:"providers"`
	FetchProgress
}

// MarshalJSON writes the status with its root as a string.
func (st FetchStatus) MarshalJSON() ([]byte, error) {
	type plain FetchStatus
	return json.Marshal(struct {
		Root string `json:"root"`
		plain
	}{st.Root.String(), plain(st)})
}

// report copies the loop's state to what Fetching reads.
func (f *fetch) report() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status.Asked = len(f.asked)
	f.status.Providers = len(f.providers)
	f.status.FetchProgress = f.done
}

// Fetching lists the fetches under way: the DAGs being fetched, the
// blocks of paths being resolved, and how many peers each has found.
func (s *Service) Fetching() []FetchStatus {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	out := make([]FetchStatus, 0, len(s.fetches))
	for f := range s.fetches {
		f.mu.Lock()
		out = append(out, f.status)
		f.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

func (f *fetch) inflight() int {
	n := 0
	for _, p := range f.providers {
		n += len(p.inflight)
	}
	return n
}

// enqueue adds c to the work, or, if the store has it, walks into its
// links without fetching it.
func (f *fetch) enqueue(ctx context.Context, c cid.Cid) error {
	if f.known[c] {
		return nil
	}
	f.known[c] = true
	bs := f.s.store.Blockstore()
	if has, err := bs.Has(ctx, c); err != nil {
		return err
	} else if !has {
		f.push(c)
		return nil
	}
	b, err := bs.Get(ctx, c)
	if isCorrupt(err) {
		// A stored block whose file is damaged: drop it and fetch it
		// afresh.
		if err := bs.DeleteBlock(ctx, c); err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
		f.push(c)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	return f.expand(ctx, b)
}

// expand queues the links of a block we have (none in a shallow fetch).
func (f *fetch) expand(ctx context.Context, b blocks.Block) error {
	if f.shallow {
		return nil
	}
	links, err := blockLinks(b)
	if err != nil {
		return fmt.Errorf("%s: %w", b.Cid(), err)
	}
	for _, l := range links {
		if err := f.enqueue(ctx, l); err != nil {
			return err
		}
	}
	return nil
}

// discover asks connected peers whether they have the root: those never
// asked, and those asked a while ago that did not become providers.
func (f *fetch) discover(ctx context.Context) {
	h := f.s.cfg.Host
	// A provider dropped a while ago gets another chance: it may only
	// have been slow (a loaded machine), or lacked then what it has now,
	// and it may be the only one there is.
	for p, at := range f.dropped {
		if time.Since(at) >= retryDropped {
			delete(f.dropped, p)
			delete(f.asked, p)
		}
	}
	for _, p := range h.Network().Peers() {
		if !f.shouldAsk(p) || h.Network().Connectedness(p) != network.Connected {
			continue
		}
		f.ask(ctx, p)
	}
}

// shouldAsk reports whether p is to be asked for the root now: it is not
// a provider already, nor dropped of late, and was never asked or is due
// to be asked again.
func (f *fetch) shouldAsk(p peer.ID) bool {
	if _, ok := f.providers[p]; ok {
		return false
	}
	if _, ok := f.dropped[p]; ok {
		return false
	}
	a, ok := f.asked[p]
	return !ok || a.due(time.Now())
}

func (f *fetch) ask(ctx context.Context, p peer.ID) {
	a := f.asked[p]
	f.asked[p] = asking{at: time.Now(), times: a.times + 1}
	m := bsmsg.New(false)
	m.AddEntry(f.root, 1<<30, pb.Message_Wantlist_Have, true)
	sctx, cancel := context.WithTimeout(ctx, minTimeout)
	defer cancel()
	f.s.net.SendMessage(sctx, p, m) // no answer is an answer
}

// addProvider makes p a provider of this fetch.
func (f *fetch) addProvider(ctx context.Context, p peer.ID) {
	if _, ok := f.providers[p]; ok {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, minTimeout)
	defer cancel()
	ms, err := f.s.net.NewMessageSender(sctx, p, &bsnetiface.MessageSenderOpts{MaxRetries: 1, SendTimeout: minTimeout})
	if err != nil {
		return
	}
	f.providers[p] = &provider{id: p, sender: ms, inflight: map[cid.Cid]time.Time{}, window: initialWindow, blockTime: minTimeout / 8}
	delete(f.dropped, p)
	for _, not := range f.excluded { // what it lacked before, it may have now
		delete(not, p)
	}
}

// dropProvider gives p's requests back to the queue.
func (f *fetch) dropProvider(p *provider, why string) {
	f.s.log.Debug("fetch: dropping provider", "peer", p.id, "root", f.root, "why", why)
	for c := range p.inflight {
		f.requeue(c)
	}
	p.sender.Reset()
	delete(f.providers, p.id)
	f.dropped[p.id] = time.Now()
}

func (f *fetch) closeProviders() {
	for _, p := range f.providers {
		if len(p.inflight) > 0 {
			// Cancels go over the stateless path, so that resetting our
			// sender's stream cannot drop them.
			m := bsmsg.New(false)
			for c := range p.inflight {
				m.Cancel(c)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			f.s.net.SendMessage(ctx, p.id, m)
			cancel()
		}
		p.sender.Reset()
	}
}

// push queues c last.
func (f *fetch) push(c cid.Cid) {
	f.queue = append(f.queue, c)
	f.queued[c] = true
}

// requeue queues c first.
func (f *fetch) requeue(c cid.Cid) {
	f.queue = append([]cid.Cid{c}, f.queue...)
	f.queued[c] = true
}

// assign hands queued blocks to providers with room in their window,
// fastest first.
func (f *fetch) assign(ctx context.Context) {
	if len(f.queue) == 0 || len(f.providers) == 0 {
		return
	}
	// Stop once every window is full: the queue of a large file holds
	// thousands of blocks, and this runs for every delivery.
	room := 0
	for _, p := range f.providers {
		room += max(p.window-len(p.inflight), 0)
	}
	if room == 0 {
		return
	}
	batches := map[*provider]bsmsg.BitSwapMessage{}
	var rest []cid.Cid
	now := time.Now()
	for i, c := range f.queue {
		if room == 0 {
			rest = append(rest, f.queue[i:]...)
			break
		}
		if !f.queued[c] {
			continue // arrived unasked
		}
		p := f.pick(c)
		if p == nil {
			rest = append(rest, c)
			continue
		}
		room--
		m := batches[p]
		if m == nil {
			m = bsmsg.New(false)
			batches[p] = m
		}
		m.AddEntry(c, int32(1<<30-f.done.Blocks), pb.Message_Wantlist_Block, true)
		p.inflight[c] = now
		delete(f.queued, c)
	}
	f.queue = rest
	for p, m := range batches {
		sctx, cancel := context.WithTimeout(ctx, minTimeout)
		err := p.sender.SendMsg(sctx, m)
		cancel()
		if err != nil {
			f.dropProvider(p, "send: "+err.Error())
		}
	}
}

// pick chooses the provider for c: one with room, not known to lack c,
// with the shortest block time.
func (f *fetch) pick(c cid.Cid) *provider {
	var best *provider
	for _, p := range f.providers {
		if len(p.inflight) >= p.window || f.excluded[c][p.id] {
			continue
		}
		if best == nil || p.blockTime*time.Duration(len(p.inflight)+1) < best.blockTime*time.Duration(len(best.inflight)+1) {
			best = p
		}
	}
	return best
}

func (f *fetch) handleInbox(ctx context.Context) error {
	f.mu.Lock()
	evs := f.inbox
	f.inbox = nil
	f.mu.Unlock()
	for _, ev := range evs {
		if ev.found != nil {
			if f.shouldAsk(ev.found.ID) {
				f.ask(ctx, ev.found.ID)
			}
			continue
		}
		for _, c := range ev.haves {
			if c.Equals(f.root) {
				f.addProvider(ctx, ev.from)
			}
		}
		for _, c := range ev.dontHaves {
			p := f.providers[ev.from]
			if p == nil {
				continue
			}
			if _, ok := p.inflight[c]; ok {
				delete(p.inflight, c)
				if f.excluded[c] == nil {
					f.excluded[c] = map[peer.ID]bool{}
				}
				f.excluded[c][p.id] = true
				f.requeue(c)
			}
		}
		for _, b := range ev.blocks {
			if err := f.receive(ctx, ev.from, b, ev.buf != nil && inLent(b)); err != nil {
				return err // the buffer is not given back: garbage
			}
		}
		ev.buf.release()
	}
	return nil
}

// receive takes a block that arrived from p, if this fetch wants it. A
// lent block's bytes are another's once receive returns.
func (f *fetch) receive(ctx context.Context, from peer.ID, b blocks.Block, lent bool) error {
	c := b.Cid()
	wanted := false
	for _, p := range f.providers {
		sent, ok := p.inflight[c]
		if !ok {
			continue
		}
		wanted = true
		delete(p.inflight, c)
		if p.id == from {
			p.got++
			p.blockTime = (3*p.blockTime + time.Since(sent)) / 4
			p.window = min(p.window+1, maxWindow)
			p.strikes = 0
		} else {
			// Someone else answered first; stop this one's request.
			m := bsmsg.New(false)
			m.Cancel(c)
			sctx, cancel := context.WithTimeout(ctx, minTimeout)
			p.sender.SendMsg(sctx, m)
			cancel()
		}
	}
	if !wanted {
		// A block of this DAG that nobody asked this fetch for: a small
		// root in answer to "have?", in place of a HAVE, or a block a
		// reader's bitswap session asked for. Its sender has the DAG, or
		// part of it: a provider, whether or not it answers "have?".
		if !f.known[c] {
			return nil
		}
		f.addProvider(ctx, from)
		if !f.queued[c] {
			return nil // had it already
		}
		delete(f.queued, c)
	}
	if f.shallow {
		f.s.servers.add(c, from)
	}
	store := f.s.bserv.AddBlock
	if lent {
		store = func(ctx context.Context, b blocks.Block) error { return f.s.storeLent(ctx, b, f.reader) }
	}
	if err := store(ctx, b); err != nil {
		return fmt.Errorf("store %s: %w", c, err)
	}
	f.done.Blocks++
	f.done.Bytes += int64(len(b.RawData()))
	if f.progress != nil {
		f.progress(f.done)
	}
	return f.expand(ctx, b)
}

// checkTimeouts takes back requests a provider sat on too long, and drops
// providers that keep failing or went away.
func (f *fetch) checkTimeouts() {
	now := time.Now()
	h := f.s.cfg.Host
	for _, p := range f.providers {
		if c := h.Network().Connectedness(p.id); c != network.Connected {
			f.dropProvider(p, "disconnected")
			continue
		}
		timedOut := false
		for c, sent := range p.inflight {
			if now.Sub(sent) > p.timeout() {
				delete(p.inflight, c)
				f.requeue(c)
				timedOut = true
			}
		}
		if timedOut {
			p.window = max(1, p.window/2)
			p.strikes++
			p.blockTime = min(2*p.blockTime, maxTimeout)
			if p.strikes >= maxStrikes {
				f.dropProvider(p, "timeouts")
			}
		}
	}
}

// servedBy remembers which peers served the blocks shallow fetches
// brought in (the blocks on the way down a path, a file's root among
// them), so that the fetch of the DAG under one of them can start with
// those peers as providers rather than ask them again whether they have
// it: some peers answer a repeated "have?" late or never (Helia 7 keeps a
// served want for 5 s and ignores it meanwhile), and until a provider
// turns up a reader gets its blocks one round trip at a time.
type servedBy struct {
	mu sync.Mutex
	m  map[cid.Cid]served
}

type served struct {
	peers []peer.ID
	at    time.Time
}

const (
	// servedMax bounds the blocks remembered; servedFor is how long a
	// peer that served one counts as a likely provider of what is under
	// it.
	servedMax      = 1024
	servedPeersMax = 8
	servedFor      = 10 * time.Minute
)

// add notes that p served c.
func (s *servedBy) add(c cid.Cid, p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.m == nil {
		s.m = map[cid.Cid]served{}
	}
	if _, ok := s.m[c]; !ok && len(s.m) >= servedMax {
		oldest := cid.Undef
		var at time.Time
		for k, v := range s.m {
			if now.Sub(v.at) > servedFor {
				delete(s.m, k)
			} else if !oldest.Defined() || v.at.Before(at) {
				oldest, at = k, v.at
			}
		}
		if len(s.m) >= servedMax {
			delete(s.m, oldest)
		}
	}
	e := s.m[c]
	e.at = now
	for _, q := range e.peers {
		if q == p {
			s.m[c] = e
			return
		}
	}
	if len(e.peers) >= servedPeersMax {
		e.peers = e.peers[1:]
	}
	e.peers = append(e.peers, p)
	s.m[c] = e
}

// of returns the peers that served any of cs lately, each once.
func (s *servedBy) of(cs ...cid.Cid) []peer.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []peer.ID
	seen := map[peer.ID]bool{}
	for _, c := range cs {
		e, ok := s.m[c]
		if !ok || time.Since(e.at) > servedFor {
			continue
		}
		for _, p := range e.peers {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}
