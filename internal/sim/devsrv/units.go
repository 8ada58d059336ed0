package devsrv

import (
	"errors"
	"fmt"

	"github.com/simonvetter/modbus"
)

// Units is the set of devices behind one endpoint (a TCP port, a gateway, a
// serial bus), by unit ID. It is the one place where Modbus requests meet
// register images: every transport decodes its framing and calls
// AppendResponse, so a register map behaves the same on every transport.
//
// A request for a unit that is not here gets the exception "gateway target
// device failed to respond" (0x0B) on TCP, what a Modbus gateway answers for
// a silent device; the RTU server does not answer at all, as on a real bus.
type Units struct {
	list []*Device
	// index by unit ID, only for sets too large to scan: a port per device
	// then costs no 2 KB table.
	index *[256]*Device
}

// unitsScan is the largest set searched by scanning the list.
const unitsScan = 8

// NewUnits groups devices; their unit IDs must be distinct and 1..247.
func NewUnits(devs ...*Device) (*Units, error) {
	u := &Units{list: make([]*Device, 0, len(devs))}
	for _, d := range devs {
		if d.Unit == 0 || d.Unit > 247 {
			return nil, fmt.Errorf("serve %s: unit %d is outside 1..247", d.ID, d.Unit)
		}
		if o := u.Device(d.Unit); o != nil {
			return nil, fmt.Errorf("serve %s: unit %d is already %s", d.ID, d.Unit, o.ID)
		}
		u.list = append(u.list, d)
	}
	if len(u.list) > unitsScan {
		u.index = new([256]*Device)
		for _, d := range u.list {
			u.index[d.Unit] = d
		}
	}
	return u, nil
}

// Device returns the device with that unit ID, or nil.
func (u *Units) Device(unit uint8) *Device {
	if u.index != nil {
		return u.index[unit]
	}
	for _, d := range u.list {
		if d.Unit == unit {
			return d
		}
	}
	return nil
}

// Devices lists the devices in the order given to NewUnits.
func (u *Units) Devices() []*Device { return u.list }

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

// exceptionCode maps an error of the device methods to its exception code,
// the inverse of what the client library maps exception codes to.
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
