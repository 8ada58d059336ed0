// Package sample defines the fixed-size measurement record that flows from the
// pollers through the ingest rings to detection and the InfluxDB sink.
//
// A Sample is a plain value of 32 bytes with no pointers, so rings can hold
// them in preallocated slots and the hot path never allocates. Names (device,
// point, feeder) are not carried: they are looked up by index in the
// immutable configuration model that every stage shares.
package sample

// Quality says how far a value can be trusted. Only Good values feed
// detection as measurements; the others say why a value is missing.
type Quality uint8

const (
	// Good: read and decoded in this poll.
	Good Quality = iota
	// Exception: the device answered with a Modbus exception.
	Exception
	// Timeout: the device did not answer in time, or the link failed.
	Timeout
	// Stale: the last good value is older than the device allows.
	Stale
	// Invalid: the registers were read but do not decode to a number (NaN, Inf).
	Invalid
)

var qualityNames = [...]string{"good", "exception", "timeout", "stale", "invalid"}

// String returns the lower-case name used in InfluxDB and logs.
func (q Quality) String() string {
	if int(q) < len(qualityNames) {
		return qualityNames[q]
	}
	return "unknown"
}

// Flag bits on a Sample.
const (
	// EndOfPoll marks the last sample of one device poll: detection evaluates
	// a device's phases together when it sees this flag.
	EndOfPoll uint8 = 1 << iota
	// DeviceStatus marks a sample that carries no point value but the result
	// of a whole poll (Point is NoPoint, Value is 1 for success, 0 for failure).
	DeviceStatus
)

// NoPoint is the Point index of a device-status sample.
const NoPoint = ^uint16(0)

// Sample is one point value of one device at one time.
type Sample struct {
	// Time is when the response arrived, in Unix nanoseconds.
	Time int64
	// Value is the scaled engineering value (bools are 0 or 1).
	Value float64
	// Device indexes Model.Devices.
	Device uint32
	// Point indexes the device's points, or is NoPoint.
	Point uint16
	// Quality of Value.
	Quality Quality
	// Flags is a set of EndOfPoll, DeviceStatus.
	Flags uint8
	// Seq numbers the polls of one device, so gaps can be seen downstream.
	Seq uint32
}
