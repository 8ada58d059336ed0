// Package sim is rtusim, feederd's companion simulator: it serves simulated
// feeder devices (breaker relays, recloser controllers, meters) over the same
// Modbus transports feederd polls — Modbus TCP, RTU on a serial line (a socat
// PTY in tests) and RTU over TCP — so that test rigs and CI exercise feederd
// end to end without hardware.
//
// Each Device holds a register image built from its profile; code (the
// Steady driver now, feeder physics and scenarios later) changes it through
// point names, and the servers read it through Modbus addresses. Modbus TCP
// is served by github.com/simonvetter/modbus; RTU framing (CRC, frame
// boundaries, exceptions) is this package's own because the library's server
// speaks TCP only. Both transports answer through the same Units handler, so
// a register map behaves the same on every transport.
package sim
