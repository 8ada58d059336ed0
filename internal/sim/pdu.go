package sim

import (
	"encoding/binary"

	"github.com/simonvetter/modbus"
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
// runs it through the same handler methods the TCP server calls, and
// appends the response PDU to dst: the data, or function|0x80 and an
// exception code. Malformed requests get "illegal data value" (03), unknown
// functions "illegal function" (01), addresses outside the map "illegal data
// address" (02).
func (u *Units) AppendResponse(dst []byte, unit uint8, pdu []byte) []byte {
	if len(pdu) == 0 {
		return dst
	}
	fc, data := pdu[0], pdu[1:]
	res, err := u.serve(dst, unit, fc, data)
	if err != nil {
		return append(dst, fc|0x80, exceptionCode(err))
	}
	return res
}

func (u *Units) serve(dst []byte, unit, fc byte, data []byte) ([]byte, error) {
	be := binary.BigEndian
	var addr, qty uint16
	if len(data) >= 4 {
		addr, qty = be.Uint16(data), be.Uint16(data[2:])
	}
	switch fc {
	case fcReadCoils, fcReadDiscreteInputs:
		if err := checkRange(len(data) == 4, addr, qty, maxReadBits); err != nil {
			return nil, err
		}
		var bits []bool
		var err error
		if fc == fcReadCoils {
			bits, err = u.HandleCoils(&modbus.CoilsRequest{UnitId: unit, Addr: addr, Quantity: qty})
		} else {
			bits, err = u.HandleDiscreteInputs(&modbus.DiscreteInputsRequest{UnitId: unit, Addr: addr, Quantity: qty})
		}
		if err != nil {
			return nil, err
		}
		n := (len(bits) + 7) / 8
		dst = append(dst, fc, byte(n))
		start := len(dst)
		dst = append(dst, make([]byte, n)...)
		for i, b := range bits {
			if b {
				dst[start+i/8] |= 1 << (i % 8)
			}
		}
		return dst, nil

	case fcReadHoldingRegisters, fcReadInputRegisters:
		if err := checkRange(len(data) == 4, addr, qty, maxReadRegisters); err != nil {
			return nil, err
		}
		var regs []uint16
		var err error
		if fc == fcReadHoldingRegisters {
			regs, err = u.HandleHoldingRegisters(&modbus.HoldingRegistersRequest{UnitId: unit, Addr: addr, Quantity: qty})
		} else {
			regs, err = u.HandleInputRegisters(&modbus.InputRegistersRequest{UnitId: unit, Addr: addr, Quantity: qty})
		}
		if err != nil {
			return nil, err
		}
		dst = append(dst, fc, byte(2*len(regs)))
		for _, r := range regs {
			dst = be.AppendUint16(dst, r)
		}
		return dst, nil

	case fcWriteSingleCoil:
		if len(data) != 4 || (qty != 0xFF00 && qty != 0x0000) {
			return nil, modbus.ErrIllegalDataValue
		}
		_, err := u.HandleCoils(&modbus.CoilsRequest{UnitId: unit, Addr: addr, Quantity: 1, IsWrite: true, Args: []bool{qty == 0xFF00}})
		if err != nil {
			return nil, err
		}
		return append(append(dst, fc), data...), nil

	case fcWriteSingleRegister:
		if len(data) != 4 {
			return nil, modbus.ErrIllegalDataValue
		}
		_, err := u.HandleHoldingRegisters(&modbus.HoldingRegistersRequest{UnitId: unit, Addr: addr, Quantity: 1, IsWrite: true, Args: []uint16{qty}})
		if err != nil {
			return nil, err
		}
		return append(append(dst, fc), data...), nil

	case fcWriteMultipleCoils:
		n := (int(qty) + 7) / 8
		if err := checkRange(len(data) >= 5 && int(data[4]) == n && len(data) == 5+n, addr, qty, maxWriteBits); err != nil {
			return nil, err
		}
		args := make([]bool, qty)
		for i := range args {
			args[i] = data[5+i/8]&(1<<(i%8)) != 0
		}
		if _, err := u.HandleCoils(&modbus.CoilsRequest{UnitId: unit, Addr: addr, Quantity: qty, IsWrite: true, Args: args}); err != nil {
			return nil, err
		}
		return append(append(dst, fc), data[:4]...), nil

	case fcWriteMultipleRegisters:
		n := 2 * int(qty)
		if err := checkRange(len(data) >= 5 && int(data[4]) == n && len(data) == 5+n, addr, qty, maxWriteRegisters); err != nil {
			return nil, err
		}
		args := make([]uint16, qty)
		for i := range args {
			args[i] = be.Uint16(data[5+2*i:])
		}
		if _, err := u.HandleHoldingRegisters(&modbus.HoldingRegistersRequest{UnitId: unit, Addr: addr, Quantity: qty, IsWrite: true, Args: args}); err != nil {
			return nil, err
		}
		return append(append(dst, fc), data[:4]...), nil
	}
	return nil, modbus.ErrIllegalFunction
}

// checkRange applies the protocol's checks in its order: a well-formed
// request with 1..limit items (else illegal data value), then an address
// range that does not pass 65535 (else illegal data address).
func checkRange(wellFormed bool, addr, qty uint16, limit int) error {
	if !wellFormed || qty == 0 || int(qty) > limit {
		return modbus.ErrIllegalDataValue
	}
	if int(addr)+int(qty) > 1<<16 {
		return modbus.ErrIllegalDataAddress
	}
	return nil
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
