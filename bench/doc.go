// Package bench holds nube's speed benchmarks. Each nube figure is measured
// beside its baseline in the same run, on the same two in-process nodes
// over loopback: the raw go-libp2p stream (TCP and QUIC) for the network
// layer. bench/run.sh runs them and prints ours, the baseline, the ratio and
// the goal side by side.
package bench
