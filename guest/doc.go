// Package guest is the Go SDK for nube service modules: the side of the
// host API nube_v1 (HOSTAPI.md) that runs inside the module. With it a
// module reads content, reads and writes spaces, calls other services and
// writes to its caller's run record, within what the caller granted the
// run.
//
// # Building a module
//
// A module is a Go program built for WASI preview 1:
//
//	GOOS=wasip1 GOARCH=wasm go build -o space-wc.wasm .
//
// Its input is stdin and its output stdout; a non-zero exit fails the run
// with what it wrote to stderr. A reactor, whose instance serves many
// runs, exports nube_run instead and is built with -buildmode=c-shared:
//
//	//go:wasmexport nube_run
//	func run() { ... }
//
//	func main() {}
//
// Publish the module and call it, granting it the space it reads:
//
//	nube service publish space-wc.wasm --name space-wc
//	nube call space-wc --allow space:OWNER/notes:read <<< "OWNER/notes todo"
//
// # Example
//
//	func main() {
//		todo, err := guest.Space("alice/notes").Get("todo")
//		if errors.Is(err, guest.ErrDenied) {
//			fmt.Fprintln(os.Stderr, "call me with --allow space:alice/notes:read")
//			os.Exit(1)
//		}
//		...
//		guest.Log("read %d bytes", len(todo))
//	}
//
// # What a run may do
//
// Every call is checked against the run's capability, which the caller
// sets. A space must be granted for read (Get, Open, List) or write (Put,
// Delete), and the key must start with the granted prefix; a
// deterministic run may not read a space at all. Call needs the service
// granted by the reference given. Content (Open by CID, Add) is open to
// every run. What the capability does not allow fails with ErrDenied; a
// run's budget (time, depth, credit, and 64 open streams) spent fails
// with ErrLimit. Errors are *Error, told apart with errors.Is and the Err
// values; their message is the host's.
//
// Outside a nube module (GOOS other than wasip1) the package builds, so
// code that uses it vets and tests anywhere, but every call fails saying
// it runs only inside a nube module, and Log writes to standard error.
package guest
