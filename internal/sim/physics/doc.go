// Package physics is rtusim's grid: it drives the devices of the device
// server (internal/sim/devsrv) as the equipment of distribution feeders
// would behave, on a fixed grid of simulated time.
//
// It owns the feeder model it is built from (Spec, FeederConfig), the
// feeder physics (load on a daily curve, voltage drop, measurements at
// each device's head: feeder.go), faults and protection (trips, recloses,
// lockout, sectionalizers, sags and swells: protect.go), the Steady
// driver of devices on no feeder, and the World that steps them and runs
// timers on simulated time. It writes registers through point names only.
//
// It may import internal/sim/devsrv, internal/topology and
// internal/profile; never internal/sim itself (the configuration file,
// scenarios, the control API and the wall clock are there, above it), and
// devsrv never imports it.
package physics
