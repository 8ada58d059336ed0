package detect

import (
	"time"

	"github.com/feederd/feederd/internal/profile"
)

// DeviceInfo is what detection needs to know about one device.
type DeviceInfo struct {
	// Index is the device's position in config.Model.Devices and the
	// sample.Sample.Device of its samples.
	Index  uint32
	ID     string
	Feeder string
	// Upstream is the Index of the device upstream on the feeder, or -1,
	// as internal/topology's tree gives it (pipeline.DevicesFromModel).
	// An upstream device outside the Detector's set is ignored (feeders
	// never span shards, so this only happens across feeders).
	Upstream int
	// Nominal is 1 pu in primary volts; a voltage in pu is
	// value × PTRatio / Nominal.
	Nominal float64
	PTRatio float64
	// Interval is the poll interval: the precision of every duration.
	Interval time.Duration
	// PointRoles is the role of each point index of the device's samples.
	PointRoles []profile.Role
	// Ties are the Indexes of normally open tie switches (on other feeders,
	// in the same Detector) that feed this device's input when they are
	// closed and energized: the topology's ties to this device.
	Ties []int
}

// CommState of a device.
type CommState uint8

const (
	// CommUnknown: nothing heard from the device yet.
	CommUnknown CommState = iota
	CommOK
	CommLost
)

var commNames = [...]string{"unknown", "ok", "lost"}

func (c CommState) String() string               { return name(commNames[:], c) }
func (c CommState) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// BandState of one phase.
type BandState uint8

const (
	BandNormal BandState = iota
	// BandOutsideA: a Range A event is open (outside 0.95–1.05 pu).
	BandOutsideA
	// BandOutsideB: a Range B event is open (outside 0.9167–1.0583 pu).
	BandOutsideB
)

var bandNames = [...]string{"normal", "outside_a", "outside_b"}

func (b BandState) String() string               { return name(bandNames[:], b) }
func (b BandState) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// BreakerState of a switching device.
type BreakerState uint8

const (
	BreakerUnknown BreakerState = iota
	BreakerClosed
	BreakerOpen
)

var breakerNames = [...]string{"unknown", "closed", "open"}

func (b BreakerState) String() string               { return name(breakerNames[:], b) }
func (b BreakerState) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// EnergyState of a device.
type EnergyState uint8

const (
	// EnergyUnknown: no evidence either way (see Detector.energize).
	EnergyUnknown EnergyState = iota
	EnergyEnergized
	EnergyDeEnergized
)

var energyNames = [...]string{"unknown", "energized", "de_energized"}

func (e EnergyState) String() string               { return name(energyNames[:], e) }
func (e EnergyState) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// DeviceState is the detection view of one device at one moment.
type DeviceState struct {
	Index  uint32
	ID     string
	Feeder string
	Comm   CommState
	// FailedPolls in a row, now.
	FailedPolls int
	// LastGood is the time of the last good sample (Unix ns), 0 if none.
	LastGood int64
	// Voltage per phase A, B, C in pu as of the last poll that read it;
	// VoltageTime is that poll's time (0: never read).
	Voltage     [3]float64
	VoltageTime [3]int64
	// Phases the device measures.
	Phases       Phases
	Band         [3]BandState
	Sag          bool
	Swell        bool
	Interruption bool
	// Energy is EnergyUnknown when neither the device's own voltage nor
	// the topology tells (a comm_lost device under a live feeder is
	// unknown, not energized).
	Energy EnergyState
	// Cause of a de-energized state, and the device it names when
	// Cause.Upstream().
	Cause       Cause
	CauseDevice uint32
	// DeadSince is the start of the de_energized event in progress.
	DeadSince int64
	Breaker   BreakerState
	Lockout   bool
	// Open: the device cuts the feeder below it (open or locked out, as
	// last seen), unless it is comm_lost and a live device below proves it
	// closed.
	Open bool
	// SequenceShots is the trip count of the recloser sequence in
	// progress, 0 when none is.
	SequenceShots int
}
