//go:build race

package nubetest

// raceEnabled is set when the race detector is on. Test nodes then run
// WebAssembly in wazero's interpreter: its compiler is ten times slower
// under the race detector, and it is our code the detector is for.
const raceEnabled = true
