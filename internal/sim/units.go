package sim

import (
	"errors"
	"fmt"

	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/profile"
)

// Units is the set of devices behind one endpoint (a TCP port, a gateway, a
// serial bus), by unit ID. It is the one place where Modbus requests meet
// register images: the library's TCP server calls it as a
// modbus.RequestHandler, and the RTU server decodes frames and calls the same
// methods.
//
// A request for a unit that is not here gets the exception "gateway target
// device failed to respond" (0x0B) on TCP, what a Modbus gateway answers for
// a silent device; the RTU server does not answer at all, as on a real bus.
type Units struct {
	byUnit [256]*Device
	list   []*Device
}

// NewUnits groups devices; their unit IDs must be distinct and 1..247.
func NewUnits(devs ...*Device) (*Units, error) {
	u := &Units{}
	for _, d := range devs {
		if d.Unit == 0 || d.Unit > 247 {
			return nil, fmt.Errorf("serve %s: unit %d is outside 1..247", d.ID, d.Unit)
		}
		if o := u.byUnit[d.Unit]; o != nil {
			return nil, fmt.Errorf("serve %s: unit %d is already %s", d.ID, d.Unit, o.ID)
		}
		u.byUnit[d.Unit] = d
		u.list = append(u.list, d)
	}
	return u, nil
}

// Device returns the device with that unit ID, or nil.
func (u *Units) Device(unit uint8) *Device { return u.byUnit[unit] }

// Devices lists the devices in the order given to NewUnits.
func (u *Units) Devices() []*Device { return u.list }

// The handler methods return modbus.Error constants unwrapped: the library
// maps errors to exception codes by identity, and anything else reaches the
// client as "server device failure".

func (u *Units) device(unit uint8) (*Device, error) {
	d := u.byUnit[unit]
	if d == nil {
		return nil, modbus.ErrGWTargetFailedToRespond
	}
	return d, nil
}

// HandleCoils implements modbus.RequestHandler (functions 1, 5, 15).
func (u *Units) HandleCoils(req *modbus.CoilsRequest) ([]bool, error) {
	d, err := u.device(req.UnitId)
	if err != nil {
		return nil, err
	}
	if req.IsWrite {
		if len(req.Args) != int(req.Quantity) {
			return nil, modbus.ErrIllegalDataValue
		}
		vals := make([]uint16, len(req.Args))
		for i, b := range req.Args {
			if b {
				vals[i] = 1
			}
		}
		return nil, d.WriteRegisters(profile.Coil, req.Addr, vals)
	}
	return readBits(d, profile.Coil, req.Addr, req.Quantity)
}

// HandleDiscreteInputs implements modbus.RequestHandler (function 2).
func (u *Units) HandleDiscreteInputs(req *modbus.DiscreteInputsRequest) ([]bool, error) {
	d, err := u.device(req.UnitId)
	if err != nil {
		return nil, err
	}
	return readBits(d, profile.DiscreteInput, req.Addr, req.Quantity)
}

// HandleHoldingRegisters implements modbus.RequestHandler (functions 3, 6, 16).
func (u *Units) HandleHoldingRegisters(req *modbus.HoldingRegistersRequest) ([]uint16, error) {
	d, err := u.device(req.UnitId)
	if err != nil {
		return nil, err
	}
	if req.IsWrite {
		if len(req.Args) != int(req.Quantity) {
			return nil, modbus.ErrIllegalDataValue
		}
		return nil, d.WriteRegisters(profile.Holding, req.Addr, req.Args)
	}
	return d.ReadRegisters(profile.Holding, req.Addr, req.Quantity)
}

// HandleInputRegisters implements modbus.RequestHandler (function 4).
func (u *Units) HandleInputRegisters(req *modbus.InputRegistersRequest) ([]uint16, error) {
	d, err := u.device(req.UnitId)
	if err != nil {
		return nil, err
	}
	return d.ReadRegisters(profile.Input, req.Addr, req.Quantity)
}

func readBits(d *Device, rt profile.RegType, addr, qty uint16) ([]bool, error) {
	regs, err := d.ReadRegisters(rt, addr, qty)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(regs))
	for i, r := range regs {
		out[i] = r != 0
	}
	return out, nil
}

// Modbus exception codes.
const (
	exIllegalFunction         byte = 0x01
	exIllegalDataAddress      byte = 0x02
	exIllegalDataValue        byte = 0x03
	exServerDeviceFailure     byte = 0x04
	exAcknowledge             byte = 0x05
	exServerDeviceBusy        byte = 0x06
	exMemoryParityError       byte = 0x08
	exGWPathUnavailable       byte = 0x0A
	exGWTargetFailedToRespond byte = 0x0B
)

// exceptionCode maps a handler error to its exception code the way the
// library's TCP server does, so both transports answer alike.
func exceptionCode(err error) byte {
	var me modbus.Error
	if !errors.As(err, &me) {
		return exServerDeviceFailure
	}
	switch me {
	case modbus.ErrIllegalFunction:
		return exIllegalFunction
	case modbus.ErrIllegalDataAddress:
		return exIllegalDataAddress
	case modbus.ErrIllegalDataValue:
		return exIllegalDataValue
	case modbus.ErrAcknowledge:
		return exAcknowledge
	case modbus.ErrServerDeviceBusy:
		return exServerDeviceBusy
	case modbus.ErrMemoryParityError:
		return exMemoryParityError
	case modbus.ErrGWPathUnavailable:
		return exGWPathUnavailable
	case modbus.ErrGWTargetFailedToRespond:
		return exGWTargetFailedToRespond
	}
	return exServerDeviceFailure
}
