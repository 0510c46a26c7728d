// Package remote runs Go functions on other nodes as if they were local.
//
// A function is declared once, at package level, and registered by name in
// every binary that links it:
//
//	var WordCount = remote.Func("wordcount", func(ctx context.Context, text string) (map[string]int, error) { … })
//
// and called on a peer, on many peers at once, or on whichever answers
// first:
//
//	counts, err := WordCount.At(node, peer).Call(ctx, text)
//	for p, r := range WordCount.OnAll(ctx, node, peers, text) { … }
//	counts, err = WordCount.Any(ctx, node, peers, text)
//
// Inputs and outputs are ordinary Go values, carried as CBOR: there is no
// IDL. A streaming function (StreamFunc) yields many results, which the
// caller ranges over with flow control. The caller's deadline bounds the
// callee, cancelling the caller cancels the callee, and calls nest: a
// function may call others with Local(ctx), bounded by the first caller's
// deadline. Failures are *Error values whose kind errors.Is tells apart
// (ErrNoSuchFunction, ErrRefused, ErrPanicked, ErrUnreachable,
// context.DeadlineExceeded, ErrInputTooLarge, ErrCallee…).
//
// An Endpoint serves the registered functions on a libp2p host, to the
// peers its Policy allows, with a cap on each peer's concurrent calls and on
// input size. Each call is one libp2p stream (see Protocol).
package remote
