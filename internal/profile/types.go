// Package profile holds device profiles (register maps) and the decoding of
// raw Modbus registers into engineering values.
//
// A profile is written once per device model (configs/profiles/*.yaml) and
// shared by every device of that model. Addresses are wire addresses, 0-based
// as they travel in the Modbus PDU; vendor manuals usually list "register
// numbers" that are the wire address plus one (40001 style numbers are wire
// address + 40001 for holding registers).
package profile

import "fmt"

// RegType is the Modbus data table a point lives in.
type RegType uint8

const (
	Coil RegType = iota
	DiscreteInput
	Holding
	Input
)

var regTypeNames = [...]string{"coil", "discrete_input", "holding", "input"}

func (r RegType) String() string {
	if int(r) < len(regTypeNames) {
		return regTypeNames[r]
	}
	return fmt.Sprintf("regtype(%d)", r)
}

// IsBit reports whether the table holds single bits (coils, discrete inputs).
func (r RegType) IsBit() bool { return r == Coil || r == DiscreteInput }

// ParseRegType accepts the names used in profile files.
func ParseRegType(s string) (RegType, bool) {
	for i, n := range regTypeNames {
		if n == s {
			return RegType(i), true
		}
	}
	return 0, false
}

// DataType is how a point's registers encode its value.
type DataType uint8

const (
	Bool DataType = iota // a coil or discrete input
	Bit                  // bit N (0 = least significant) of one register
	Int16
	Uint16
	Int32
	Uint32
	Int64
	Uint64
	Float32
	Float64
	String // Length registers, two ASCII bytes each, high byte first
)

var dataTypeNames = [...]string{"bool", "bit", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"}

func (d DataType) String() string {
	if int(d) < len(dataTypeNames) {
		return dataTypeNames[d]
	}
	return fmt.Sprintf("datatype(%d)", d)
}

// ParseDataType accepts the names used in profile files.
func ParseDataType(s string) (DataType, bool) {
	for i, n := range dataTypeNames {
		if n == s {
			return DataType(i), true
		}
	}
	return 0, false
}

// WordOrder is the byte and word order of multi-register values, named by
// where bytes A (most significant) to D land on the wire.
type WordOrder uint8

const (
	ABCD WordOrder = iota // big-endian bytes, high word first (Modbus default)
	CDAB                  // big-endian bytes, low word first ("word swap")
	BADC                  // little-endian bytes in each word, high word first ("byte swap")
	DCBA                  // fully little-endian
)

var wordOrderNames = [...]string{"ABCD", "CDAB", "BADC", "DCBA"}

func (w WordOrder) String() string {
	if int(w) < len(wordOrderNames) {
		return wordOrderNames[w]
	}
	return fmt.Sprintf("wordorder(%d)", w)
}

// ParseWordOrder accepts ABCD, CDAB, BADC, DCBA.
func ParseWordOrder(s string) (WordOrder, bool) {
	for i, n := range wordOrderNames {
		if n == s {
			return WordOrder(i), true
		}
	}
	return 0, false
}

// Role tells detection what a point means. Points without a role are only
// recorded.
type Role string

const (
	RoleNone          Role = ""
	RoleVoltageA      Role = "voltage_a" // phase-to-neutral (or phase-to-phase, see Profile.LineToLine)
	RoleVoltageB      Role = "voltage_b"
	RoleVoltageC      Role = "voltage_c"
	RoleCurrentA      Role = "current_a"
	RoleCurrentB      Role = "current_b"
	RoleCurrentC      Role = "current_c"
	RoleCurrentN      Role = "current_n"
	RoleActivePower   Role = "active_power"
	RoleReactivePower Role = "reactive_power"
	RolePowerFactor   Role = "power_factor"
	RoleFrequency     Role = "frequency"
	RoleEnergy        Role = "energy"
	RoleBreakerClosed Role = "breaker_closed" // 1 = closed
	RoleLockout       Role = "lockout"        // 1 = locked out
	RoleShotCount     Role = "shot_count"     // reclose shots in the current sequence
	RoleTripCount     Role = "trip_count"     // cumulative trips
)

// Roles lists every known role, for validation and documentation.
var Roles = []Role{
	RoleVoltageA, RoleVoltageB, RoleVoltageC,
	RoleCurrentA, RoleCurrentB, RoleCurrentC, RoleCurrentN,
	RoleActivePower, RoleReactivePower, RolePowerFactor, RoleFrequency, RoleEnergy,
	RoleBreakerClosed, RoleLockout, RoleShotCount, RoleTripCount,
}

// Point is one named value in a device's register map.
type Point struct {
	Name    string
	RegType RegType
	Address uint16 // 0-based wire address
	Type    DataType
	BitPos  uint8  // for Bit: 0..15
	Length  uint16 // for String: number of registers
	Order   WordOrder
	Scale   float64 // value = raw*Scale + Offset; 0 in a file means 1
	Offset  float64
	Unit    string
	Role    Role
}

// Field keys of the InfluxDB line of a device poll (internal/influx writes
// the line; internal/config rejects a device whose keys would clash).
const (
	// OKField is 1 when the device answered the poll, 0 when it did not.
	OKField = "ok"
	// SeqField is the poll's schedule slot.
	SeqField = "seq"
	// QualitySuffix turns a point's Field into the key of its quality
	// code, written instead of the value when the value is not good.
	QualitySuffix = "_q"
)

// Field is the key of the point's value in the line of its device's poll:
// its role when it has one, so that one query finds phase-A voltage on
// every device model, else its name.
func (p *Point) Field() string {
	if p.Role != RoleNone {
		return string(p.Role)
	}
	return p.Name
}

// QualityField is the key of the point's quality code in the line of a
// poll where its value is not good.
func (p *Point) QualityField() string { return p.Field() + QualitySuffix }

// Profile is the register map of one device model.
type Profile struct {
	Name   string // the key devices use
	Vendor string
	Model  string
	// LineToLine is true when the voltage roles are phase-to-phase values.
	LineToLine bool
	Points     []Point
	// Source is the file the profile came from, for error messages.
	Source string
}
