// Package sim is rtusim, feederd's companion simulator: it serves whole
// simulated feeders (breaker relays, recloser controllers, switches, meters)
// over the same Modbus transports feederd polls — Modbus TCP, Modbus/TCP
// Security, RTU over TCP and RTU on a serial line or a PTY it creates — so
// that test rigs and CI exercise feederd end to end without hardware.
//
// It is three layers, each importing only the ones below it
// (TestImportDirection checks):
//
//   - internal/sim/devsrv, the Modbus device server: devices and their
//     register images, PDU handling, RTU framing, the endpoints of every
//     transport, and the faults injected per device.
//   - internal/sim/physics, the grid: feeder physics, protection, the
//     Steady driver, and the World that steps them on simulated time and
//     writes the devices through point names.
//   - this package, the composition that cmd/rtusim runs: the
//     configuration file (Config), scenarios and events, the Sim that
//     plays them on a World and maps a Clock to simulated time, the
//     control API and its guard, and Run, which opens the endpoints.
//
// The same seed and scenario give the same registers at the same simulated
// times: the World steps on a fixed grid, and scenario events are timers
// on its timeline.
package sim
