package sim

import (
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/feederd/feederd/internal/grid"
)

// FeederConfig is one simulated feeder of a Config: its topology and the
// parameters of its physics and protection. See the Config doc comment for
// the file format and feeder.go for what the numbers mean.
type FeederConfig struct {
	Grid *grid.Feeder
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
	// Nodes parallel Grid.Nodes.
	Nodes []NodeConfig
}

// NodeConfig is what the simulator needs beyond the topology of one node.
type NodeConfig struct {
	// Device indexes Config.Devices: the device that serves this node's
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

// NodeRef names a node of a Config: Config.Feeders[Feeder].Nodes[Node].
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

// Default feeder parameters.
const (
	defaultSourcePU    = 1.0
	defaultPowerFactor = 0.95
	defaultFrequency   = 60.0
	defaultDropPerMW   = 0.002
	defaultCounts      = 2
	maxShots           = 8
)

type fileFeeder struct {
	ID             string        `yaml:"id"`
	NominalVoltage float64       `yaml:"nominal_voltage"`
	SourceKV       float64       `yaml:"source_kv"`
	SourcePU       float64       `yaml:"source_pu"`
	PowerFactor    float64       `yaml:"power_factor"`
	Frequency      float64       `yaml:"frequency"`
	DropPerMW      *float64      `yaml:"drop_per_mw"`
	TripDelay      time.Duration `yaml:"trip_delay"`
	Reclose        *fileReclose  `yaml:"reclose"`
	Nodes          []fileNode    `yaml:"nodes"`
}

type fileReclose struct {
	Intervals []time.Duration `yaml:"intervals"`
	Reset     time.Duration   `yaml:"reset"`
}

type fileNode struct {
	ID           string       `yaml:"id"`
	Kind         string       `yaml:"kind"`
	Device       string       `yaml:"device"`
	Upstream     string       `yaml:"upstream"`
	Section      fileSection  `yaml:"section"`
	NormallyOpen bool         `yaml:"normally_open"`
	Tie          string       `yaml:"tie"`
	Reclose      *fileReclose `yaml:"reclose"`
	Counts       int          `yaml:"counts"`
}

type fileSection struct {
	LoadKW    float64 `yaml:"load_kw"`
	Customers int     `yaml:"customers"`
	Critical  int     `yaml:"critical"`
}

// feeders checks and builds the feeders once the devices are known:
// devIdx maps the ID of every built device to its index in cfg.Devices;
// defined holds every device ID the file defines, built or not (a node on a
// device that failed its own checks adds no error).
func (c *checker) feeders(ff []fileFeeder, defined map[string]string) {
	cfg := c.cfg
	devIdx := make(map[string]int, len(cfg.Devices))
	for i, d := range cfg.Devices {
		devIdx[d.ID] = i
	}
	type where struct{ feeder, node int }
	nodes := map[string]where{}   // node ID -> where it is defined
	usedDev := map[int]string{}   // device index -> path of the node using it
	feederIDs := map[string]int{} // feeder ID -> index in ff
	var ties []struct {
		p      []any
		from   where
		target string
	}
	for i, f := range ff {
		p := at("feeders", i)
		if c.checkID(f.ID, append(p, "id")) {
			if _, dup := feederIDs[f.ID]; dup {
				c.errf(append(p, "id"), "feeder %s is defined twice", f.ID)
			} else {
				feederIDs[f.ID] = i
			}
		}
		fc := FeederConfig{
			SourcePU:    orDefault(f.SourcePU, defaultSourcePU),
			PowerFactor: orDefault(f.PowerFactor, defaultPowerFactor),
			Frequency:   orDefault(f.Frequency, defaultFrequency),
			DropPerMW:   defaultDropPerMW,
			TripDelay:   f.TripDelay,
		}
		if f.DropPerMW != nil {
			fc.DropPerMW = *f.DropPerMW
		}
		switch {
		case (f.NominalVoltage != 0) == (f.SourceKV != 0):
			c.errf(p, "set exactly one of nominal_voltage (line-to-neutral volts) and source_kv (line-to-line kV)")
		case f.NominalVoltage != 0:
			fc.NominalVoltage = f.NominalVoltage
			c.positive(f.NominalVoltage, append(p, "nominal_voltage"))
		default:
			fc.NominalVoltage = f.SourceKV * 1000 / math.Sqrt(3)
			c.positive(f.SourceKV, append(p, "source_kv"))
		}
		if !(fc.SourcePU >= 0.5 && fc.SourcePU <= 1.5) {
			c.errf(append(p, "source_pu"), "%g is outside 0.5..1.5", fc.SourcePU)
		}
		if !(fc.PowerFactor > 0 && fc.PowerFactor <= 1) {
			c.errf(append(p, "power_factor"), "%g is outside (0, 1]", fc.PowerFactor)
		}
		if !(fc.Frequency > 0 && fc.Frequency <= 1000) {
			c.errf(append(p, "frequency"), "%g Hz is outside (0, 1000]", fc.Frequency)
		}
		if !(fc.DropPerMW >= 0 && fc.DropPerMW <= 0.5) {
			c.errf(append(p, "drop_per_mw"), "%g pu per MW is outside 0..0.5", fc.DropPerMW)
		}
		if fc.TripDelay < 0 || fc.TripDelay > time.Minute {
			c.errf(append(p, "trip_delay"), "%s is outside 0s..1m", fc.TripDelay)
		}
		recloserDefault := DefaultReclose()
		if f.Reclose != nil {
			recloserDefault = c.reclose(f.Reclose, append(p, "reclose"), DefaultReclose())
		}

		specs := make([]grid.NodeSpec, len(f.Nodes))
		fc.Nodes = make([]NodeConfig, len(f.Nodes))
		for j, n := range f.Nodes {
			np := at("feeders", i, "nodes", j)
			kind := grid.Kind(n.Kind)
			specs[j] = grid.NodeSpec{ID: n.ID, Kind: kind, Upstream: n.Upstream,
				Section: grid.Section{LoadKW: n.Section.LoadKW, Customers: n.Section.Customers, Critical: n.Section.Critical}}
			nc := NodeConfig{Device: -1, NormallyOpen: n.NormallyOpen, Tie: NodeRef{-1, -1}}
			if n.ID != "" {
				if prev, dup := nodes[n.ID]; dup && prev.feeder != i {
					c.errf(append(np, "id"), "node %s is already defined at feeders[%d].nodes[%d]", n.ID, prev.feeder, prev.node)
				} else if !dup {
					nodes[n.ID] = where{i, j}
				}
				if prev, clash := defined[n.ID]; clash && n.Device != n.ID {
					c.errf(append(np, "id"), "node %s has the ID of the device at %s but serves %s: a node with a device's ID serves that device", n.ID, prev, orNone(n.Device))
				}
			}
			if n.Device != "" {
				di, ok := devIdx[n.Device]
				_, known := defined[n.Device]
				switch {
				case !ok && !known:
					c.errf(append(np, "device"), "no device %q", n.Device)
				case !ok:
					// The device failed its own checks.
				case usedDev[di] != "":
					c.errf(append(np, "device"), "device %s already serves %s", n.Device, usedDev[di])
				case cfg.Devices[di].Current != 0:
					c.errf(append(np, "device"), "device %s sets current %g: on a feeder its current comes from the load", n.Device, cfg.Devices[di].Current)
				default:
					usedDev[di] = pathString(np)
					nc.Device = di
				}
			}
			if n.NormallyOpen && !kind.Switching() {
				c.errf(append(np, "normally_open"), "a %s cannot open: only breakers, reclosers, sectionalizers and switches", kindName(kind))
			}
			if n.Tie != "" {
				if kind != grid.KindSwitch {
					c.errf(append(np, "tie"), "a tie is a switch, not a %s", kindName(kind))
				} else {
					ties = append(ties, struct {
						p      []any
						from   where
						target string
					}{append(np, "tie"), where{i, j}, n.Tie})
				}
			}
			switch {
			case n.Reclose != nil && !kind.Protective():
				c.errf(append(np, "reclose"), "only breakers and reclosers reclose, not a %s", kindName(kind))
			case n.Reclose != nil && kind == grid.KindBreaker:
				nc.Reclose = c.reclose(n.Reclose, append(np, "reclose"), Reclose{Reset: recloserDefault.Reset})
			case n.Reclose != nil:
				nc.Reclose = c.reclose(n.Reclose, append(np, "reclose"), recloserDefault)
			case kind == grid.KindRecloser:
				nc.Reclose = recloserDefault
			default:
				// Breakers trip to lockout unless told to reclose; the reset
				// time still ends a sectionalizer's count.
				nc.Reclose = Reclose{Reset: recloserDefault.Reset}
			}
			switch {
			case n.Counts != 0 && kind != grid.KindSectionalizer:
				c.errf(append(np, "counts"), "only sectionalizers count interruptions, not a %s", kindName(kind))
			case n.Counts < 0 || n.Counts > maxShots:
				c.errf(append(np, "counts"), "%d is outside 1..%d", n.Counts, maxShots)
			case n.Counts == 0:
				nc.Counts = defaultCounts
			default:
				nc.Counts = n.Counts
			}
			fc.Nodes[j] = nc
		}
		g, err := grid.NewFeeder(f.ID, specs)
		if err != nil {
			c.gridErrors(i, err)
		}
		fc.Grid = g
		cfg.Feeders = append(cfg.Feeders, fc)
	}
	for fi, f := range ff {
		id := f.ID
		if id == "" || feederIDs[id] != fi {
			continue // missing or a duplicate, reported above
		}
		if w, clash := nodes[id]; clash {
			c.errf(at("feeders", fi, "id"), "feeder %s has the ID of node feeders[%d].nodes[%d]: scenario targets would be ambiguous", id, w.feeder, w.node)
		} else if prev, clash := defined[id]; clash {
			c.errf(at("feeders", fi, "id"), "feeder %s has the ID of the device at %s: scenario targets would be ambiguous", id, prev)
		}
	}
	for _, t := range ties {
		w, ok := nodes[t.target]
		switch {
		case !ok:
			c.errf(t.p, "no node %q", t.target)
		case w == t.from:
			c.errf(t.p, "a switch cannot tie to itself")
		default:
			cfg.Feeders[t.from.feeder].Nodes[t.from.node].Tie = NodeRef{w.feeder, w.node}
		}
	}
}

// gridErrors reports grid.NewFeeder's errors at their node's key.
func (c *checker) gridErrors(feeder int, err error) {
	var joined interface{ Unwrap() []error }
	errs := []error{err}
	if errors.As(err, &joined) {
		errs = joined.Unwrap()
	}
	for _, e := range errs {
		var ge *grid.Error
		switch {
		case !errors.As(e, &ge):
			c.errf(at("feeders", feeder), "%v", e)
		case ge.Node < 0:
			c.errf(at("feeders", feeder), "%s", ge.Msg)
		default:
			c.errf(at("feeders", feeder, "nodes", ge.Node, ge.Key), "%s", ge.Msg)
		}
	}
}

func (c *checker) reclose(r *fileReclose, p []any, def Reclose) Reclose {
	out := def
	if r.Intervals != nil {
		out.Intervals = r.Intervals
	}
	if r.Reset != 0 {
		out.Reset = r.Reset
	}
	if len(out.Intervals) > maxShots {
		c.errf(append(p, "intervals"), "%d recloses: at most %d", len(out.Intervals), maxShots)
	}
	for k, d := range out.Intervals {
		if d <= 0 || d > time.Hour {
			c.errf(append(p, "intervals", k), "open interval %s is outside (0s, 1h]", d)
		}
	}
	if out.Reset <= 0 || out.Reset > 24*time.Hour {
		c.errf(append(p, "reset"), "reset %s is outside (0s, 24h]", out.Reset)
	}
	return out
}

func (c *checker) positive(v float64, p []any) {
	if !(v > 0) || math.IsInf(v, 0) {
		c.errf(p, "%g is not positive", v)
	}
}

func orDefault(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

func orNone(s string) string {
	if s == "" {
		return "no device"
	}
	return strconv.Quote(s)
}

func kindName(k grid.Kind) string {
	if k == "" {
		return "node without kind"
	}
	return string(k)
}
