package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	golog "github.com/ipfs/go-log/v2"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/space"
	"github.com/nubecloud/nube/wasm"
)

type upFlags struct {
	api       string
	gateway   string
	listen    []string
	bootstrap []string
	noListen  bool
	noMDNS    bool
	noIPFS    bool
	ipfsBoot  []string
	network   string
	noPortMap bool
	relay     bool
	logLevel  string
	joinUser  string

	noCompute     bool
	computeSlots  int
	computeMemory string

	noStorage   bool
	repairGrace time.Duration

	offer           string
	offerTo         string
	trust           []string
	minPriceCall    uint64
	minPriceCPU     uint64
	storagePrice    uint64
	maxStoragePrice uint64
	offerJobs       int
	offerDisk       string
}

func newUpCmd(g *globals) *cobra.Command {
	var f upFlags
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a node and its local API",
		Long: `Start a nube node on the data dir and keep it running until Ctrl-C or SIGTERM.

The first start creates the node's key (its peer ID) and your user key in the
data dir; later starts reuse them. On another machine of yours, start with
--join-user and an invite from 'nube user invite' instead: the node joins
your user with a cert and holds no copy of user.key ('nube user --help'). The node listens on TCP and QUIC port 4040
(another port if that one is taken), finds peers on the local network by mDNS
and further away through the DHT, and reconnects to the peers it knew.

The node also joins the IPFS public DHT as a client (--no-ipfs: not): 'nube
cat' and 'nube get' then find content that lives on the IPFS network, and
what this node pins is announced there too, so IPFS nodes find it. Through
it, nodes of one nube network find each other anywhere on the internet with
nothing configured: each announces the network's rendezvous key there and
looks up who else does. --network NAME joins a network of your own, apart
from the one everyone shares.

The node runs other users' WebAssembly services in a sandbox (no files, no
sockets) within conservative limits; --no-compute turns that off and
--compute-slots bounds how many run at once.

The node holds copies of other users' spaces when their owners place them
here (sealed: it sees only ciphertext); --no-storage refuses. For the spaces
this node is home of, a holder gone longer than --space-repair-grace is
replaced by another node.

What the node offers others, and to whom, is its owner's to say. By default
it runs code and holds spaces for the nodes of its own user only (and the
users and peers named with --trust): nobody runs strangers' code by surprise.
--offer-to anyone opens it to every node: priced services are then paid for
through the credit ledger, at no less than --min-price-call/--min-price-cpu,
and holding other users' spaces earns --storage-price per GiB-day. --offer
says what is offered (compute, storage, both, or none); --offer-jobs and
--offer-disk bound what others may take of the CPU and the disk.

The local API listens on --api (loopback only by default). Its address and a
fresh access token are written into the data dir, where the other nube
commands find them. The dashboard is at the API's address; 'nube open' opens
it in your browser, logged in. No login code is ever printed or logged, so
a service journal holds none.

The read-only IPFS gateway listens on --gateway, an origin apart from the
API's (port 8080 by default, another if that one is taken; "off" for none).
Open http://localhost:PORT/ipfs/CID to give each CID an origin of its own
(CID.ipfs.localhost), where web apps run; on any other host name the path
gateway serves pages in a sandbox, without scripts.

The data dir must not be writable by group or others, nor its key files
readable by them: nube up refuses such a data dir and says how to fix it.

Settings: every flag below may also be set in the data dir's config file,
DATA/` + ConfigFile + ` (by default ` + configPath(defaultDataDir()) + `), a JSON object
whose keys are the flag names ({"api": "127.0.0.1:5001", "no-mdns": true}).
A flag on the command line wins over the file. 'nube config set KEY VALUE'
writes it, checked; 'nube config show' prints it. nube up reads it as it
starts, so a running node uses a change once restarted.`,
		Example: `  nube up
  nube up --data /srv/nube --api 127.0.0.1:0 --gateway 127.0.0.1:0
  nube up --bootstrap /ip4/203.0.113.7/udp/4040/quic-v1/p2p/12D3KooW...
  nube up --listen /ip4/0.0.0.0/tcp/4001 --relay
  nube up --data ~/.nube-laptop --join-user nubeinvite1:...   # one more node of yours
  nube up --offer-to anyone --min-price-cpu 100 --storage-price 50 --offer-jobs 2 --offer-disk 20GiB`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// The config file fills in what the command line left out.
			if err := applyConfig(cmd.Flags(), g.dataDir); err != nil {
				return err
			}
			return runUp(cmd.Context(), g, f, cmd.Flags().Changed("gateway"))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.api, "api", "127.0.0.1:5050", "HOST:PORT of the local API (port 0 picks a free one)")
	fl.StringVar(&f.gateway, "gateway", api.DefaultGatewayAddr, `HOST:PORT of the read-only IPFS gateway, apart from the API (port 0 picks a free one; "off" for none)`)
	fl.StringArrayVar(&f.listen, "listen", nil, "multiaddr to listen on (repeatable); default TCP and QUIC on port 4040, all interfaces")
	fl.StringArrayVar(&f.bootstrap, "bootstrap", nil, "multiaddr of a peer to join through, ending in /p2p/<peer ID> (repeatable)")
	fl.BoolVar(&f.noListen, "no-listen", false, "accept no direct connections; be reachable only through a relay (as behind a strict firewall)")
	fl.BoolVar(&f.noMDNS, "no-mdns", false, "do not discover or announce on the local network")
	fl.BoolVar(&f.noIPFS, "no-ipfs", false, "stay off the IPFS public DHT (content is then found only among nube nodes)")
	fl.StringVar(&f.network, "network", "", `the nube network to join (default "nube", the one everyone shares)`)
	fl.StringArrayVar(&f.ipfsBoot, "ipfs-bootstrap", nil, "multiaddr of an IPFS DHT peer to join through instead of the public bootstrap peers (repeatable)")
	fl.BoolVar(&f.noPortMap, "no-portmap", false, "do not ask the router for a port mapping (UPnP/NAT-PMP)")
	fl.BoolVar(&f.relay, "relay", false, "relay connections for peers that cannot be reached directly (for nodes others can dial)")
	fl.BoolVar(&f.noCompute, "no-compute", false, "run no WebAssembly services, for others or for yourself (calling other nodes' still works)")
	fl.IntVar(&f.computeSlots, "compute-slots", 0, "services run at once (default: one per CPU); more wait in a short line, then are refused as busy")
	fl.StringVar(&f.computeMemory, "compute-memory", "", "the most memory one service run may use (default 256MiB)")
	fl.BoolVar(&f.noStorage, "no-storage", false, "hold no copies of other users' spaces")
	fl.DurationVar(&f.repairGrace, "space-repair-grace", space.DefaultRepairGrace, "how long a holder of one of this node's spaces may be gone before a copy is placed elsewhere")
	fl.StringVar(&f.offer, "offer", "compute,storage", `what this node offers other nodes: "compute", "storage", both (comma-separated), or "none"`)
	fl.StringVar(&f.offerTo, "offer-to", nube.OfferOwn, `whom: "own" (this user's nodes and those trusted) or "anyone" (paying, where the service is priced)`)
	fl.StringArrayVar(&f.trust, "trust", nil, "a user or peer ID served as this user's own nodes are (repeatable)")
	fl.Uint64Var(&f.minPriceCall, "min-price-call", 0, "price floor per call, in millicredits, for nodes not trusted")
	fl.Uint64Var(&f.minPriceCPU, "min-price-cpu", 0, "price floor per CPU-second, in millicredits, for nodes not trusted")
	fl.Uint64Var(&f.storagePrice, "storage-price", 0, "what holding another user's space costs, in millicredits per GiB-day")
	fl.Uint64Var(&f.maxStoragePrice, "max-storage-price", 0, "the most this user pays holders of its spaces, in millicredits per GiB-day (default 10000)")
	fl.IntVar(&f.offerJobs, "offer-jobs", 0, "the most runs for other users at once (default: every compute slot)")
	fl.StringVar(&f.offerDisk, "offer-disk", "", "the most bytes of other users' spaces to hold, such as 20GiB (default: no bound)")
	fl.StringVar(&f.joinUser, "join-user", "", "an invite from 'nube user invite': on a fresh data dir, join that user's nodes without a copy of user.key")
	fl.StringVar(&f.logLevel, "log-level", "warn", "log level: debug, info, warn or error (logs go to stderr; libp2p's own appear with debug, or as GOLOG_LOG_LEVEL says)")
	return cmd
}

// upInfo is what nube up prints when the node is ready.
type upInfo struct {
	ID        string   `json:"id"`
	UserID    string   `json:"user_id"`
	Addrs     []string `json:"addrs"`
	API       string   `json:"api"`
	Gateway   string   `json:"gateway,omitempty"`
	Dashboard string   `json:"dashboard"`
	DataDir   string   `json:"data_dir"`
	Offers    string   `json:"offers"`
}

func runUp(ctx context.Context, g *globals, f upFlags, gatewayChosen bool) error {
	log, err := newLogger(f.logLevel)
	if err != nil {
		return err
	}
	if f.noListen && len(f.listen) > 0 {
		return errors.New("--no-listen and --listen contradict each other: give one or the other")
	}
	if f.repairGrace <= 0 {
		return fmt.Errorf("--space-repair-grace %v: want a positive duration", f.repairGrace)
	}
	if f.computeSlots < 0 {
		return fmt.Errorf("--compute-slots %d: want 1 or more (or --no-compute)", f.computeSlots)
	}
	computeMemory, err := parseSize(f.computeMemory)
	if err != nil {
		return fmt.Errorf("--compute-memory: %w", err)
	}
	offer, noStorage, err := f.offerTerms()
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// A daemon's heap is mostly blocks passing through, live for a
		// moment: collecting at half the live heap's growth rather than
		// Go's whole keeps a 1 GiB fetch's peak RSS 15-30 MiB lower
		// for a few percent of CPU (RATIONALE.md, Blocks).
		debug.SetGCPercent(50)
	}
	node, err := nube.Start(ctx, nube.Config{
		DataDir:          g.dataDir,
		ListenAddrs:      f.listen,
		NoListen:         f.noListen,
		Bootstrap:        f.bootstrap,
		NoMDNS:           f.noMDNS,
		NoIPFS:           f.noIPFS,
		Network:          f.network,
		IPFSBootstrap:    f.ipfsBoot,
		NoPortMap:        f.noPortMap,
		RelayService:     f.relay,
		NoCompute:        f.noCompute,
		ComputeSlots:     f.computeSlots,
		ComputeLimits:    wasm.Limits{Memory: computeMemory},
		NoStorage:        noStorage,
		Offer:            offer,
		SpaceRepairGrace: f.repairGrace,
		JoinUser:         f.joinUser,
		Logger:           log,
	})
	if err != nil {
		return upError(err, g.dataDir)
	}
	defer node.Close()
	// Serve the groups this node is a member of, so that they have it
	// back as soon as it runs.
	for _, name := range node.Groups().List() {
		if _, err := node.Groups().Open(ctx, name, group.Options{}); err != nil {
			log.Warn("group not reopened", "group", name, "err", err)
		}
	}

	token := api.NewToken()
	srv, err := api.Listen(node, f.api, token, log)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("API address %s is in use (another nube?); pick another with --api HOST:PORT, or port 0 for any", f.api)
		}
		return err
	}
	defer srv.Close()
	if err := client.WriteEndpoint(g.dataDir, endpointURL(srv.Addr()), token); err != nil {
		return err
	}
	defer client.RemoveEndpoint(g.dataDir)

	gw, err := listenGateway(node, f.gateway, gatewayChosen, log)
	if err != nil {
		return err
	}
	if gw != nil {
		defer gw.Close()
	}

	info := upInfo{
		ID: node.ID().String(), UserID: node.UserID().String(),
		API: srv.URL(), Dashboard: srv.URL() + "/", DataDir: g.dataDir, Offers: offerLine(offer, noStorage, f.noCompute),
	}
	if gw != nil {
		info.Gateway = gw.URL()
	}
	for _, a := range node.Addrs() {
		info.Addrs = append(info.Addrs, a.String())
	}
	if g.json {
		if err := g.printJSON(info); err != nil {
			return err
		}
	} else {
		g.printf("nube %s is up\n", nube.Version)
		g.printf("peer ID    %s\n", info.ID)
		g.printf("user       %s\n", info.UserID)
		for i, a := range info.Addrs {
			label := "listening"
			if i > 0 {
				label = ""
			}
			g.printf("%-10s %s\n", label, a)
		}
		g.printf("API        %s\n", info.API)
		if info.Gateway != "" {
			g.printf("gateway    %s/ipfs/CID\n", strings.Replace(info.Gateway, "127.0.0.1", "localhost", 1))
		}
		g.printf("dashboard  %s  ('nube open' logs you in)\n", info.Dashboard)
		g.printf("data dir   %s\n", info.DataDir)
		g.printf("offers     %s\n", info.Offers)
		g.printf("\nPress Ctrl-C to stop.\n")
	}
	if o, ok := g.out.(*os.File); ok {
		o.Sync()
	}
	<-ctx.Done()
	if !g.json {
		g.printf("\nshutting down\n")
	}
	return nil
}

// endpointURL is the API's URL as the CLI is to dial it, given the
// address it listens on: an API on every interface (0.0.0.0 or [::], as in
// a container that publishes its port) is dialled on loopback, where the
// CLI sends its token without --remote-api.
func endpointURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err == nil && ip != nil && ip.IsUnspecified() {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	return "http://" + addr
}

// listenGateway starts the gateway on addr, or on a free port if addr is
// the default and taken (a second node on the machine, or another IPFS
// gateway). It returns nil for "off".
func listenGateway(node *nube.Node, addr string, chosen bool, log *slog.Logger) (*api.Gateway, error) {
	if addr == "off" || addr == "" {
		return nil, nil
	}
	cfg := api.GatewayConfig{Logger: log}
	gw, err := api.ListenGateway(node, addr, cfg)
	if err != nil && !chosen && errors.Is(err, syscall.EADDRINUSE) {
		host, _, _ := net.SplitHostPort(addr)
		gw, err = api.ListenGateway(node, net.JoinHostPort(host, "0"), cfg)
	}
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("gateway address %s is in use; pick another with --gateway HOST:PORT, port 0 for any, or --gateway off", addr)
		}
		return nil, err
	}
	return gw, nil
}

// upError turns a start failure into the one line a user needs.
func upError(err error, dataDir string) error {
	switch {
	case errors.Is(err, nube.ErrDataDirInUse):
		return fmt.Errorf("another nube is already running on %s: stop it first, or use another --data", dataDir)
	case errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission):
		return fmt.Errorf("cannot use data dir %s: %v", dataDir, err)
	}
	return err
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("bad --log-level %q: want debug, info, warn or error", level)
	}
	// libp2p logs through go-log, and at error level it reports things a
	// user need not see (a listener closing as the node stops, a peer that
	// went away). Show its logs only with debug; GOLOG_LOG_LEVEL, when
	// set, says what to show instead.
	if os.Getenv("GOLOG_LOG_LEVEL") == "" {
		if l <= slog.LevelDebug {
			golog.SetAllLoggers(golog.LevelWarn)
		} else {
			golog.SetAllLoggers(golog.LevelFatal)
		}
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
	// Some libraries print through the standard log package (the mDNS
	// library's "[zeroconf] no suitable IPv4 interface" at every start
	// on a machine without multicast). Route it into this logger, at
	// debug: what matters of it, the node says in a line of its own.
	slog.SetDefault(logger)
	slog.SetLogLoggerLevel(slog.LevelDebug)
	return logger, nil
}

// offerTerms reads the offer flags.
func (f upFlags) offerTerms() (o nube.Offer, noStorage bool, err error) {
	compute, storage := false, false
	for _, w := range strings.Split(f.offer, ",") {
		switch strings.TrimSpace(w) {
		case "compute":
			compute = true
		case "storage":
			storage = true
		case "none", "":
		default:
			return o, false, fmt.Errorf("--offer %q: want compute, storage, compute,storage or none", f.offer)
		}
	}
	if f.offerTo != nube.OfferOwn && f.offerTo != nube.OfferAnyone {
		return o, false, fmt.Errorf("--offer-to %q: want own or anyone", f.offerTo)
	}
	if f.offerJobs < 0 {
		return o, false, fmt.Errorf("--offer-jobs %d: want 1 or more (or --offer storage to run nothing for others)", f.offerJobs)
	}
	disk, err := parseSize(f.offerDisk)
	if err != nil {
		return o, false, fmt.Errorf("--offer-disk: %w", err)
	}
	o = nube.Offer{To: f.offerTo, NoCompute: !compute, MinPrice: service.Price{PerCall: f.minPriceCall, PerCPUSecond: f.minPriceCPU},
		StoragePrice: f.storagePrice, MaxStoragePrice: f.maxStoragePrice, Jobs: f.offerJobs, Disk: disk}
	for _, t := range f.trust {
		id, err := peer.Decode(t)
		if err != nil {
			return o, false, fmt.Errorf("--trust %q: not a user or peer ID: %v", t, err)
		}
		// A user ID and a peer ID look alike; trusting both ways costs
		// nothing, since no key is both.
		o.Users, o.Peers = append(o.Users, id), append(o.Peers, id)
	}
	return o, f.noStorage || !storage, nil
}

// offerLine says in a line what the node offers others and to whom.
func offerLine(o nube.Offer, noStorage, noCompute bool) string {
	var what []string
	if !o.NoCompute && !noCompute {
		what = append(what, "compute")
	}
	if !noStorage {
		what = append(what, "storage")
	}
	if len(what) == 0 {
		return "nothing to other nodes"
	}
	whom := "to this user's nodes only (--offer-to anyone opens it)"
	if len(o.Users) > 0 {
		whom = fmt.Sprintf("to this user's nodes and %d trusted", len(o.Users))
	}
	if o.To == nube.OfferAnyone {
		whom = "to anyone, priced services paid through the ledger"
	}
	return strings.Join(what, " and ") + ", " + whom
}
