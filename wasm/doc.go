// Package wasm runs WebAssembly modules in a sandbox, on wazero: the way
// nube runs code a node has never seen, on any CPU.
//
// A module gets WASI preview 1 and nothing more: stdin (the run's input),
// stdout (its output), stderr, args, a real clock and crypto-grade random
// numbers. It has no files, no sockets and no other imports; a module that
// asks for more is refused when it is compiled.
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
package wasm
