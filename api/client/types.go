package client

import (
	"errors"
	"net/http"
	"time"

	"github.com/nubecloud/nube/errcode"
)

// These are the JSON documents of the daemon's HTTP API. They belong to
// the API, not to the node's Go types, so that a program talking to the
// daemon links nothing of the node (no libp2p, no Pebble, no wazero).

// Status is the answer of GET /api/v0/status.
type Status struct {
	ID           string   `json:"id"`
	UserID       string   `json:"user_id"`
	Version      string   `json:"version"`
	Addrs        []string `json:"addrs"`
	Peers        int      `json:"peers"`
	RoutingTable int      `json:"routing_table"` // DHT routing table size
	Reachability string   `json:"reachability"`  // Unknown, Public or Private
	RelayService bool     `json:"relay_service"`
	MDNS         bool     `json:"mdns"`
	Network      string   `json:"network"` // the nube network joined
	// IPFSRoutingTable is the size of the IPFS DHT's routing table; -1
	// when the node is off the IPFS DHT.
	IPFSRoutingTable int       `json:"ipfs_routing_table"`
	DataDir          string    `json:"data_dir"`
	StartedAt        time.Time `json:"started_at"`
	Uptime           string    `json:"uptime"`
}

// PeerInfo is one connected peer in GET /api/v0/peers.
type PeerInfo struct {
	ID        string   `json:"id"`
	Addrs     []string `json:"addrs"`
	Direction string   `json:"direction"` // "inbound" or "outbound"
	Relayed   bool     `json:"relayed"`   // the connection goes through a relay
	LatencyMS float64  `json:"latency_ms,omitempty"`
	Agent     string   `json:"agent,omitempty"`
}

// Price is what a service asks for its runs, in millicredits.
type Price struct {
	PerCall      uint64 `json:"per_call,omitempty"`
	PerCPUSecond uint64 `json:"per_cpu_second,omitempty"`
}

// Usage is what a run cost. Durations are in nanoseconds in JSON.
type Usage struct {
	CPU    time.Duration `json:"cpu"`
	Wall   time.Duration `json:"wall"`
	Memory int64         `json:"memory"` // peak linear memory, bytes
	In     int64         `json:"in"`
	Out    int64         `json:"out"`
}

// Limits bound a run; zero fields leave the service's or node's default.
type Limits struct {
	Memory  int64
	Timeout time.Duration
}

// PublishOptions describe a service being published.
type PublishOptions struct {
	Name, Version, Description string
	Input, Output              string
	Limits                     Limits
	Price                      Price
	// Wants are the rights the module needs: space:read, space:write,
	// call:NAME.
	Wants []string
	// Deterministic declares the module's output a function of its
	// input, content and seed alone.
	Deterministic bool
}

// RunRecord is one run the node did for a caller, in GET
// /api/v0/service/runs.
type RunRecord struct {
	At         time.Time `json:"at"`
	Service    string    `json:"service"`
	Descriptor string    `json:"descriptor"`
	Module     string    `json:"module"`
	Caller     string    `json:"caller"`
	Usage      Usage     `json:"usage"`
	Cold       bool      `json:"cold,omitempty"`
	Error      string    `json:"error,omitempty"`
	// Earned is what the run was billed, in millicredits.
	Earned int64 `json:"earned,omitempty"`
	// Allowed are the rights the run's capability gave it, as --allow
	// takes them.
	Allowed []string `json:"allowed,omitempty"`
	// Depth is how deep in nested calls the run was.
	Depth int `json:"depth,omitempty"`
	// Touched is what the run did through the host API.
	Touched *Touched `json:"touched,omitempty"`
}

// Touched is what a run did through the host API: the space keys it read
// and wrote, the bytes, the content it opened and added, its nested calls
// and the lines it logged.
type Touched struct {
	Read         []string `json:"read,omitempty"`
	Wrote        []string `json:"wrote,omitempty"`
	BytesRead    int64    `json:"bytes_read,omitempty"`
	BytesWritten int64    `json:"bytes_written,omitempty"`
	Opened       []string `json:"opened,omitempty"`
	Added        []string `json:"added,omitempty"`
	Calls        []string `json:"calls,omitempty"`
	Log          []string `json:"log,omitempty"`
}

// FuncInfo describes a function a node serves for remote calls.
type FuncInfo struct {
	Name   string `json:"name"`
	In     string `json:"in"`  // the input type, in Go syntax
	Out    string `json:"out"` // the output type (of each item, for a stream)
	Stream bool   `json:"stream"`
}

// ServiceInfo is a service descriptor as the API shows it.
type ServiceInfo struct {
	CID         string     `json:"cid"`
	Name        string     `json:"name"`
	Version     string     `json:"version,omitempty"`
	Description string     `json:"description,omitempty"`
	Module      string     `json:"module,omitempty"`
	Stages      []string   `json:"stages,omitempty"`
	Input       string     `json:"input,omitempty"`
	Output      string     `json:"output,omitempty"`
	Limits      LimitsJSON `json:"limits"`
	Price       Price      `json:"price"`
	Publisher   string     `json:"publisher"`
	Created     time.Time  `json:"created"`
	// Runners are nodes seen with the module ready to run.
	Runners []string `json:"runners,omitempty"`
	// Wants are the rights the module needs from its callers.
	Wants []string `json:"wants,omitempty"`
	// Deterministic services can be checked by re-running them.
	Deterministic bool `json:"deterministic,omitempty"`
}

// LimitsJSON are run limits; zero means the node's default.
type LimitsJSON struct {
	Memory    int64 `json:"memory_bytes,omitempty"`
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	MaxInput  int64 `json:"max_input_bytes,omitempty"`
	MaxOutput int64 `json:"max_output_bytes,omitempty"`
}

// CallResult is one node's answer to a call.
type CallResult struct {
	Peer      string  `json:"peer,omitempty"`
	Output    []byte  `json:"output,omitempty"` // base64 in JSON
	Usage     Usage   `json:"usage"`
	ElapsedMS float64 `json:"elapsed_ms"`
	Cold      bool    `json:"cold,omitempty"`
	Error     string  `json:"error,omitempty"`
	// Kind says what kind of failure Error is, when the run itself
	// failed: timeout, memory, exit, trap, busy, no-compute, fetch, …
	Kind string `json:"kind,omitempty"`
	// ExitCode is the module's exit code, for kind "exit".
	ExitCode uint32 `json:"exit_code,omitempty"`
	// Cost is what the run cost the caller, in millicredits.
	Cost int64 `json:"cost,omitempty"`
	// OutputCID is the output left as content on Peer, for a call with
	// out_cid.
	OutputCID string `json:"output_cid,omitempty"`
	// Near is set when the call asked to run near its data and Peer
	// holds it.
	Near bool `json:"near,omitempty"`
	// Verified is how many nodes gave this output, for a call with
	// verify; Runs names each node's answer when they disagreed.
	Verified int         `json:"verified,omitempty"`
	Runs     []VerifyRun `json:"runs,omitempty"`
	// Memo names the node whose signed record of the same run gave the
	// output, for a call with cached that ran nothing (or whose record
	// the verify runs agreed with).
	Memo string `json:"memo,omitempty"`
}

// VerifyRun is one node's answer to a verified call: the hash of its
// output and its signed proof of the run.
type VerifyRun struct {
	Peer  string `json:"peer"`
	Hash  string `json:"hash,omitempty"`
	Proof []byte `json:"proof,omitempty"`
	Error string `json:"error,omitempty"`
}

// CallOptions are the choices of a call beyond its input (see nube call).
type CallOptions struct {
	// N runs it on this many nodes at once.
	N int
	// On names the only nodes to run on.
	On []string
	// Limits bound each run.
	Limits Limits
	// Allow are the rights each run gets, as --allow takes them.
	Allow []string
	// Near is a CID or OWNER/NAME to run beside.
	Near string
	// OutCID leaves the output as content and returns its CID.
	OutCID bool
	// Verify runs it on this many nodes and compares the outputs.
	Verify int
	// Cached returns a recorded result of the same deterministic run
	// instead of running (see service.Pipeline.Cached); with Verify,
	// another user's record counts once that many runs agree with it.
	Cached bool
	// Budget is what each run's own calls of priced services may spend,
	// in millicredits.
	Budget uint64
}

// FunctionsResult is the answer of GET /api/v0/remote/ls: the functions a
// peer serves to this node.
type FunctionsResult struct {
	Peer      string     `json:"peer"`
	Functions []FuncInfo `json:"functions"`
}

// Headers that tell the CLI what a get or cat streams.
const (
	HeaderKind = "X-Nube-Kind" // "file" or "directory"
	HeaderSize = "X-Nube-Size" // bytes of the file, or of the directory's DAG
	HeaderCID  = "X-Nube-CID"
	// HeaderMode and HeaderMTime carry the permission bits (octal) and
	// the modification time (RFC 3339) a file's or directory's DAG holds,
	// when it holds them.
	HeaderMode  = "X-Nube-Mode"
	HeaderMTime = "X-Nube-Mtime"
	// TrailerError is the trailer that ends a stream the node could not
	// finish (a directory's tar stream, once its status is sent): the
	// Error, as JSON, in base64. A Download reads it in place of the
	// stream's end.
	TrailerError = "X-Nube-Error"
)

// Written is the report that ends a cat or get the node wrote into a file
// handed over to it (CatTo, GetTo).
type Written struct {
	Bytes int64 `json:"bytes"`
	// Error is what stopped the writing, and Status the HTTP status it
	// would have come with; nil and 0 when nothing did.
	Error  *Error `json:"error,omitempty"`
	Status int    `json:"status,omitempty"`
}

// ImportResult is the answer of POST /api/v0/dag/import.
type ImportResult struct {
	Roots  []string `json:"roots"`
	Blocks int      `json:"blocks"`
	Bytes  int64    `json:"bytes"`
	Pinned bool     `json:"pinned"`
}

// CARType is the media type of a CAR file.
const CARType = "application/vnd.ipld.car"

// AddResult is the answer of POST /api/v0/add.
type AddResult struct {
	CID    string `json:"cid"`
	Bytes  int64  `json:"bytes"`
	Pinned bool   `json:"pinned"`
}

// EntryJSON is a UnixFS entry as the API shows it.
type EntryJSON struct {
	Name   string `json:"name"`
	CID    string `json:"cid"`
	Kind   string `json:"kind"`
	Size   uint64 `json:"size"`
	Target string `json:"target,omitempty"`
}

// PinRequest is the body of POST /api/v0/pin/add and /pin/rm.
type PinRequest struct {
	CID  string `json:"cid"`
	Name string `json:"name,omitempty"`
}

// VerifyRequest is the body of POST /api/v0/repo/verify.
type VerifyRequest struct {
	Remove bool `json:"remove"`
}

// VerifyResult is the answer of POST /api/v0/repo/verify.
type VerifyResult struct {
	Checked int      `json:"checked"`
	Bad     []string `json:"bad"`
	Removed bool     `json:"removed"`
}

// Fetching is one entry of GET /api/v0/fetching: a fetch under way, the
// peers it asked for its root and those that provide it.
type Fetching struct {
	Root      string    `json:"root"`
	Started   time.Time `json:"started"`
	Asked     int       `json:"asked"`
	Providers int       `json:"providers"`
	Blocks    int       `json:"blocks"`
	Bytes     int64     `json:"bytes"`
}

// ID is the answer of GET /api/v0/id.
type ID struct {
	ID      string   `json:"id"`
	UserID  string   `json:"user_id"`
	Addrs   []string `json:"addrs"`
	Version string   `json:"version"`
}

// ConnectRequest is the body of POST /api/v0/connect.
type ConnectRequest struct {
	Addr string `json:"addr"`
}

// ConnectResult is the answer of POST /api/v0/connect.
type ConnectResult struct {
	ID string `json:"id"`
}

// PingRequest is the body of POST /api/v0/ping.
type PingRequest struct {
	Peer  string `json:"peer"`
	Count int    `json:"count"` // 1 if zero; at most 100
}

// PingResult is the answer of POST /api/v0/ping: one round-trip time per
// ping, in milliseconds.
type PingResult struct {
	Peer  string    `json:"peer"`
	RTTMS []float64 `json:"rtt_ms"`
}

// Error is the body of every error answer.
type Error struct {
	// Code says what kind of failure it is, for programs: one of the
	// Code* constants.
	Code string `json:"code"`
	// Message says what went wrong, for people.
	Message string `json:"message"`
	// Status is the HTTP status it came with (not in the JSON).
	Status int `json:"-"`
}

// The codes of Error (errcode's). The HTTP status each comes with is in
// statuses.
const (
	CodeBadRequest   = string(errcode.BadRequest)
	CodeUnauthorized = string(errcode.Unauthorized)
	CodeForbidden    = string(errcode.Forbidden)
	CodeRefused      = string(errcode.Refused) // a node's policy said no
	CodeNotFound     = string(errcode.NotFound)
	CodeConflict     = string(errcode.Conflict)
	CodeTooLarge     = string(errcode.TooLarge)
	CodeBusy         = string(errcode.Busy)
	CodeUnreachable  = string(errcode.Unreachable)
	CodeTimeout      = string(errcode.Timeout)
	CodeInternal     = string(errcode.Internal)
)

// statuses is the one table of the API's errors: the HTTP status of each
// errcode code. The daemon answers every error with its code's status
// (StatusOf), and the client reads a status that came without a code
// (from a proxy, say) back into the first code of that status (CodeOf),
// so the two sides cannot disagree. ARCHITECTURE.md lists it with the
// sentinels of each code.
var statuses = []struct {
	code   string
	status int
}{
	{CodeBadRequest, http.StatusBadRequest},
	{CodeUnauthorized, http.StatusUnauthorized},
	{CodeForbidden, http.StatusForbidden},
	{CodeRefused, http.StatusForbidden},
	{CodeNotFound, http.StatusNotFound},
	{CodeConflict, http.StatusConflict},
	{CodeTooLarge, http.StatusRequestEntityTooLarge},
	{CodeBusy, http.StatusServiceUnavailable},
	{CodeBusy, http.StatusTooManyRequests}, // the gateway's per-client cap
	{CodeUnreachable, http.StatusBadGateway},
	{CodeTimeout, http.StatusGatewayTimeout},
	{CodeInternal, http.StatusInternalServerError},
}

// StatusOf returns the HTTP status the API answers an error of code with:
// 500 for internal and for a code it does not know.
func StatusOf(code string) int {
	for _, s := range statuses {
		if s.code == code {
			return s.status
		}
	}
	return http.StatusInternalServerError
}

// CodeOf returns the code that goes with an HTTP status, for an answer
// that carries none: internal for a status of no code.
func CodeOf(status int) string {
	for _, s := range statuses {
		if s.status == status {
			return s.code
		}
	}
	return CodeInternal
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// The sentinels of the codes, errcode's: errors.Is(err, client.ErrNotFound)
// holds for an *Error of that code.
var (
	ErrBadRequest   = errcode.ErrBadRequest
	ErrUnauthorized = errcode.ErrUnauthorized
	ErrForbidden    = errcode.ErrForbidden
	ErrRefused      = errcode.ErrRefused
	ErrNotFound     = errcode.ErrNotFound
	ErrConflict     = errcode.ErrConflict
	ErrBusy         = errcode.ErrBusy
	ErrUnreachable  = errcode.ErrUnreachable
	ErrTimeout      = errcode.ErrTimeout
)

// Is matches the code's sentinel, and any layer's sentinel of that code,
// so errors.Is(err, service.ErrBusy) holds through the daemon when the
// answer's code is busy (the client learns the code, not which layer).
func (e *Error) Is(target error) bool {
	s := errcode.Sentinel(errcode.Code(e.Code))
	return s != nil && errors.Is(target, s)
}

// SessionRequest spends a one-time login code: POST /api/v0/session.
type SessionRequest struct {
	Code string `json:"code"`
}

// LoginLink is the answer of POST /api/v0/login.
type LoginLink struct {
	URL string `json:"url"`
}
