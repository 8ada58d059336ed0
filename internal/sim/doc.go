// Package sim is rtusim, feederd's companion simulator: it serves whole
// simulated feeders (breaker relays, recloser controllers, switches, meters)
// over the same Modbus transports feederd polls — Modbus TCP, Modbus/TCP
// Security, RTU over TCP and RTU on a serial line or a PTY it creates — so
// that test rigs and CI exercise feederd end to end without hardware.
//
// Each Device holds a compact register image built from its profile. Feeder
// physics (load on a daily curve, voltage drop, protection that trips,
// recloses and locks out, tie switches) writes it through point names, on a
// fixed grid of simulated time that scenarios and the control API drive, so
// the same seed and scenario give the same registers at the same simulated
// times. Devices without a feeder are driven by the Steady driver.
//
// Every transport is this package's own server over Units.AppendResponse
// (MBAP for TCP and TLS, RTU framing with CRC for serial lines and RTU over
// TCP), so a register map behaves the same on every transport, and faults
// (silence, refusal, half-open connections, latency, exceptions, bad CRC)
// can be injected per device.
package sim
