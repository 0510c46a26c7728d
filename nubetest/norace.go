//go:build !race

package nubetest

const raceEnabled = false
