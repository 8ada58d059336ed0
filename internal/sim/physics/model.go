package physics

import (
	"time"

	"github.com/feederd/feederd/internal/topology"
)

// FeederConfig is one simulated feeder: its topology and the parameters
// of its physics and protection (feeder.go and protect.go say what the
// numbers mean). rtusim's Config builds them from its file.
type FeederConfig struct {
	Topology *topology.Feeder
	// NominalVoltage is 1 pu on the primary, line-to-neutral volts.
	NominalVoltage float64
	// SourcePU is the substation bus voltage (default 1.0).
	SourcePU float64
	// PowerFactor of the load (default 0.95) and Frequency (default 60 Hz).
	PowerFactor float64
	Frequency   float64
	// DropPerMW is the voltage drop in pu along a section per MW of
	// three-phase load flowing through it (default 0.002).
	DropPerMW float64
	// TripDelay is how long fault current flows before protection opens
	// (default 0: the trip happens at the instant of the fault).
	TripDelay time.Duration
	// Nodes parallel Topology.Nodes.
	Nodes []NodeConfig
}

// NodeConfig is what the simulator needs beyond the topology of one node.
type NodeConfig struct {
	// Section is the load the node serves.
	Section Section
	// Device indexes Spec.Devices: the device that serves this node's
	// registers; -1 for a node without telemetry.
	Device int
	// NormallyOpen starts a switching node open.
	NormallyOpen bool
	// Tie is the node whose section this switch connects to its own
	// section when closed (Feeder -1: not a tie switch).
	Tie NodeRef
	// Reclose is the reclosing of a breaker or recloser: no intervals
	// means a trip goes straight to lockout.
	Reclose Reclose
	// Counts is the number of interruptions after which a sectionalizer
	// opens (default 2).
	Counts int
}

// Section is the load a node serves: the customers connected between it
// and the next nodes downstream.
type Section struct {
	// LoadKW is the three-phase load at its daily peak.
	LoadKW    float64
	Customers int
	// Critical counts the customers among Customers that need priority
	// restoration (hospital, life support, water).
	Critical int
}

// NodeRef names a node of a Spec: Spec.Feeders[Feeder].Nodes[Node].
type NodeRef struct{ Feeder, Node int }

// Reclose is a reclosing sequence.
type Reclose struct {
	// Intervals are the open times before each reclose: len(Intervals)
	// recloses ("shots"), so len+1 trips lead to lockout.
	Intervals []time.Duration
	// Reset: a reclose that holds this long ends the sequence and the
	// shot counter returns to 0 (default 60s). Sectionalizers forget
	// their count after it too.
	Reset time.Duration
}

// DefaultReclose is a recloser's sequence unless its feeder or node says
// otherwise: three recloses, after 2, 5 and 15 s open, then lockout on the
// fourth trip.
func DefaultReclose() Reclose {
	return Reclose{Intervals: []time.Duration{2 * time.Second, 5 * time.Second, 15 * time.Second}, Reset: time.Minute}
}
