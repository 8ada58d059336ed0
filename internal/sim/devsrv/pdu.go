package devsrv

import (
	"encoding/binary"

	"github.com/feederd/feederd/internal/profile"
)

// Function codes the simulator serves.
const (
	fcReadCoils              byte = 0x01
	fcReadDiscreteInputs     byte = 0x02
	fcReadHoldingRegisters   byte = 0x03
	fcReadInputRegisters     byte = 0x04
	fcWriteSingleCoil        byte = 0x05
	fcWriteSingleRegister    byte = 0x06
	fcWriteMultipleCoils     byte = 0x0F
	fcWriteMultipleRegisters byte = 0x10
)

// Request limits of the Modbus application protocol (V1.1b3, section 6).
const (
	maxReadBits       = 2000
	maxReadRegisters  = 125
	maxWriteBits      = 1968
	maxWriteRegisters = 123
)

// AppendResponse decodes one request PDU (function code and data) for unit,
// runs it against the unit's device and appends the response PDU to dst:
// the data, or function|0x80 and an exception code. Malformed requests get
// "illegal data value" (03), unknown functions "illegal function" (01),
// addresses outside the map "illegal data address" (02), unknown units
// "gateway target device failed to respond" (0B), and requests covering a
// point of the device's Fault.Exceptions the injected code. The other
// fields of a Fault are the transports' business.
func (u *Units) AppendResponse(dst []byte, unit uint8, pdu []byte) []byte {
	if len(pdu) == 0 {
		return dst
	}
	fc, data := pdu[0], pdu[1:]
	res, ex := u.serve(dst, unit, fc, data)
	if ex != 0 {
		return append(dst, fc|0x80, ex)
	}
	return res
}

// serve appends the response data, or returns an exception code.
func (u *Units) serve(dst []byte, unit, fc byte, data []byte) ([]byte, byte) {
	be := binary.BigEndian
	var addr, qty uint16
	if len(data) >= 4 {
		addr, qty = be.Uint16(data), be.Uint16(data[2:])
	}
	var (
		rt         profile.RegType
		wellFormed bool
		limit      int
	)
	switch fc {
	case fcReadCoils, fcReadDiscreteInputs:
		rt, wellFormed, limit = profile.Coil, len(data) == 4, maxReadBits
		if fc == fcReadDiscreteInputs {
			rt = profile.DiscreteInput
		}
	case fcReadHoldingRegisters, fcReadInputRegisters:
		rt, wellFormed, limit = profile.Holding, len(data) == 4, maxReadRegisters
		if fc == fcReadInputRegisters {
			rt = profile.Input
		}
	case fcWriteSingleCoil:
		if len(data) != 4 || (qty != 0xFF00 && qty != 0x0000) {
			return nil, exIllegalDataValue
		}
		rt, wellFormed, limit, qty = profile.Coil, true, 1, 1
	case fcWriteSingleRegister:
		rt, wellFormed, limit = profile.Holding, len(data) == 4, 1
		qty = 1
	case fcWriteMultipleCoils:
		n := (int(qty) + 7) / 8
		rt, wellFormed, limit = profile.Coil, len(data) >= 5 && int(data[4]) == n && len(data) == 5+n, maxWriteBits
	case fcWriteMultipleRegisters:
		n := 2 * int(qty)
		rt, wellFormed, limit = profile.Holding, len(data) >= 5 && int(data[4]) == n && len(data) == 5+n, maxWriteRegisters
	default:
		return nil, exIllegalFunction
	}
	if ex := checkRange(wellFormed, addr, qty, limit); ex != 0 {
		return nil, ex
	}
	d := u.Device(unit)
	if d == nil {
		return nil, exGWTargetFailedToRespond
	}
	if st := d.fault.Load(); st != nil {
		if ex := st.exception(rt, addr, qty); ex != 0 {
			return nil, ex
		}
	}

	switch fc {
	case fcReadCoils, fcReadDiscreteInputs:
		var bits [maxReadBits]uint16
		if err := d.readLocked(rt, addr, qty, bits[:qty]); err != nil {
			return nil, exceptionCode(err)
		}
		n := (int(qty) + 7) / 8
		dst = append(dst, fc, byte(n))
		start := len(dst)
		dst = append(dst, make([]byte, n)...)
		for i, b := range bits[:qty] {
			if b != 0 {
				dst[start+i/8] |= 1 << (i % 8)
			}
		}
		return dst, 0

	case fcReadHoldingRegisters, fcReadInputRegisters:
		dst = append(dst, fc, byte(2*qty))
		dst, err := d.appendRegs(dst, rt, addr, qty)
		if err != nil {
			return nil, exceptionCode(err)
		}
		return dst, 0

	case fcWriteSingleCoil:
		v := uint16(0)
		if be.Uint16(data[2:]) == 0xFF00 {
			v = 1
		}
		if err := d.WriteRegisters(rt, addr, []uint16{v}); err != nil {
			return nil, exceptionCode(err)
		}
		return append(append(dst, fc), data...), 0

	case fcWriteSingleRegister:
		if err := d.WriteRegisters(rt, addr, []uint16{be.Uint16(data[2:])}); err != nil {
			return nil, exceptionCode(err)
		}
		return append(append(dst, fc), data...), 0

	case fcWriteMultipleCoils:
		vals := make([]uint16, qty)
		for i := range vals {
			if data[5+i/8]&(1<<(i%8)) != 0 {
				vals[i] = 1
			}
		}
		if err := d.WriteRegisters(rt, addr, vals); err != nil {
			return nil, exceptionCode(err)
		}
		return append(append(dst, fc), data[:4]...), 0

	default: // fcWriteMultipleRegisters
		vals := make([]uint16, qty)
		for i := range vals {
			vals[i] = be.Uint16(data[5+2*i:])
		}
		if err := d.WriteRegisters(rt, addr, vals); err != nil {
			return nil, exceptionCode(err)
		}
		return append(append(dst, fc), data[:4]...), 0
	}
}

// checkRange applies the protocol's checks in its order: a well-formed
// request with 1..limit items (else illegal data value), then an address
// range that does not pass 65535 (else illegal data address).
func checkRange(wellFormed bool, addr, qty uint16, limit int) byte {
	if !wellFormed || qty == 0 || int(qty) > limit {
		return exIllegalDataValue
	}
	if int(addr)+int(qty) > 1<<16 {
		return exIllegalDataAddress
	}
	return 0
}

// isWrite reports whether a function code changes data; only those are
// executed for broadcasts (unit 0).
func isWrite(fc byte) bool {
	switch fc {
	case fcWriteSingleCoil, fcWriteSingleRegister, fcWriteMultipleCoils, fcWriteMultipleRegisters:
		return true
	}
	return false
}
