// Package devsrv is rtusim's Modbus device server: it holds simulated
// devices and answers Modbus requests from their register images, over
// every transport feederd polls.
//
// It owns the Device (a compact register image built from a profile,
// written through point names), Units (the devices behind one address),
// the PDU handling (Units.AppendResponse), RTU framing with its CRC, the
// endpoints (Modbus TCP, Modbus/TCP Security, RTU over TCP, RTU on a
// serial line or on a PTY it creates) and the faults injected per device
// (silence, refusal, half-open connections, latency, exceptions, bad CRC).
// Every transport is its own server over Units.AppendResponse, so a
// register map behaves the same on every transport.
//
// It knows nothing of feeders, physics, scenarios or configuration files:
// it may import internal/profile and libraries, never another package of
// internal/sim (the layers above write its devices; TestImportDirection
// in internal/sim checks it).
package devsrv
