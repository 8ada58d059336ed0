package main

import (
	"log/slog"
	"runtime/debug"
)

// gcPercent is feederd's garbage-collection target when the environment
// sets none. feederd's live heap is almost all long-lived per-device state
// (configuration, read plans, detection, encoders: about 8 KB a device) and
// it allocates little once running (the hot path allocates nothing), so
// Go's default (GOGC=100: the heap grows to twice the live heap before a
// collection) mostly buys idle memory. At 35 the heap peaks at 1.35 times
// the live heap: at 10,000 devices (about 110 MB live) RSS was 195 MiB at
// 50 and 180 MiB at 35, with feederd's CPU per device-poll within the
// machine's noise (48 and 45 us; BENCHMARKS.md, "Fleet at 1,000 to 10,000
// devices").
const gcPercent = 35

// tuneGC applies gcPercent unless GOGC or GOMEMLIMIT is set, which then
// rule as in any Go program.
func tuneGC(getenv func(string) string, log *slog.Logger) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(gcPercent)
	log.Debug("garbage collection target set", "gogc", gcPercent)
}
