// Package wasm runs WebAssembly modules in a sandbox, on wazero: the way
// nube runs code a node has never seen, on any CPU.
//
// A module gets WASI preview 1: stdin (the run's input), stdout (its
// output), stderr, args, a real clock and crypto-grade random numbers. It
// has no files and no sockets. Beside WASI it may import only the host
// functions the runtime was given (Config.Host); a module that imports
// anything else, or a host function with another type, is refused when
// it is compiled, with an error naming the import ("imports
// nube_v1.foo, which this node does not provide"), so a node older than
// the module says so rather than running it.
//
// Every run has limits (Limits): linear memory, a wall-clock deadline, and
// the size of its input and output. A module that passes one is stopped
// and the run fails with an error naming the limit (ErrMemoryLimit,
// ErrTimeout, ErrOutputTooLarge, ErrInputTooLarge). Nothing a module does
// can crash the host. Every run reports its Usage: CPU time, wall time,
// peak memory and bytes in and out, for whoever charges for the work.
//
// Modules are addressed by CID. Compile refuses bytes that do not hash to
// the CID they came under, compiles each module once, and keeps the
// machine code in wazero's compilation cache on disk, so a restarted node
// does not compile again.
//
// Two kinds of module are run:
//
//   - A command exports _start (what `GOOS=wasip1 go build` makes). Each
//     run instantiates it afresh, so runs share nothing. Starting a Go
//     command costs milliseconds: its runtime initialises every time.
//   - A reactor exports nube_run, and usually _initialize (what
//     `go build -buildmode=c-shared` makes of a package with a
//     `//go:wasmexport nube_run` function). An instance is initialised
//     once and then serves run after run, each with fresh stdin and
//     stdout, which costs microseconds. Instances are kept per owner
//     (Job.Owner, the caller), so one caller's runs never see state left
//     by another's; an instance whose run failed is thrown away.
//
// # Host functions
//
// Config.Host maps an import module's name (the service layer's is
// "nube_v1", see HOSTAPI.md) to its functions, each a HostFunc of I32 and
// I64 values. A HostFunc runs on the module's goroutine and reads and
// writes the caller's linear memory through a bounds-checked Memory,
// valid during the call alone. Whoever runs a module gives the run's own
// state (who it is for, what it may do) as Job.Host, and the host
// function gets it back with HostValue(ctx): each run sees its own,
// though a reactor instance serves many. The time host functions take
// counts in the run's wall time, and their ctx ends with the run: a host
// function that blocks must return when it does, and the run then fails
// with ErrTimeout (or the caller's error) whatever it returned.
//
// # Deterministic runs
//
// A Job with Deterministic set gives a result that depends only on the
// module, its input, args and Job.Seed, and on what its host functions
// return (they must keep to that too, which is their business). Such a
// run sees a virtual clock: wall time starts at 2022-01-01T00:00:00Z and
// monotonic time at 0, and both move on by 1ms at each reading and by
// the time asked at each sleep, which returns at once. Its random bytes
// come from ChaCha8 keyed with the SHA-256 of Seed. A reactor's
// deterministic run gets a fresh instance, used for it alone and then
// closed, so no earlier run's state can change its result: it pays the
// instance's start-up each time, as a command does.
package wasm
