package sim

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/feederd/feederd/internal/sim/physics"
	"github.com/feederd/feederd/internal/topology"
)

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
	nodes := map[string]where{}   // node ID -> where it is defined
	usedDev := map[int]string{}   // device index -> path of the node using it
	feederIDs := map[string]int{} // feeder ID -> index in ff
	var ties []struct {
		p      []any
		from   where
		target string
	}
	// The feeders' trees go through the one topology model; sp says where
	// in the file each of its nodes and feeders is.
	var sp specPlaces
	spec := topology.Spec{Locate: func(p []any) string { return pathString(sp.path(p)) }}
	for i, f := range ff {
		p := at("feeders", i)
		// The nodes of a feeder without an ID, or with another's, are
		// left out of the topology: the feeder is an error already.
		inTopology := false
		if c.checkID(f.ID, append(p, "id")) {
			if _, dup := feederIDs[f.ID]; dup {
				c.errf(append(p, "id"), "feeder %s is defined twice", f.ID)
			} else {
				feederIDs[f.ID] = i
				inTopology = true
				spec.Feeders = append(spec.Feeders, topology.FeederSpec{ID: f.ID})
				sp.feeders = append(sp.feeders, i)
			}
		}
		fc := physics.FeederConfig{
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
		recloserDefault := physics.DefaultReclose()
		if f.Reclose != nil {
			recloserDefault = c.reclose(f.Reclose, append(p, "reclose"), physics.DefaultReclose())
		}

		fc.Nodes = make([]physics.NodeConfig, len(f.Nodes))
		for j, n := range f.Nodes {
			np := at("feeders", i, "nodes", j)
			kind := topology.Kind(n.Kind)
			if inTopology {
				spec.Nodes = append(spec.Nodes, topology.NodeSpec{ID: n.ID, Feeder: f.ID, Kind: kind, Upstream: n.Upstream})
				sp.nodes = append(sp.nodes, where{i, j})
			}
			if !kind.Valid() {
				c.errf(append(np, "kind"), "%q is not one of %s", n.Kind, kindList())
			}
			sec := physics.Section{LoadKW: n.Section.LoadKW, Customers: n.Section.Customers, Critical: n.Section.Critical}
			switch {
			case sec.LoadKW < 0 || math.IsNaN(sec.LoadKW) || math.IsInf(sec.LoadKW, 0):
				c.errf(append(np, "section"), "load %g kW is negative or not a number", sec.LoadKW)
			case sec.Customers < 0 || sec.Critical < 0:
				c.errf(append(np, "section"), "customers %d, critical %d: negative", sec.Customers, sec.Critical)
			case sec.Critical > sec.Customers:
				c.errf(append(np, "section"), "%d critical customers of %d customers", sec.Critical, sec.Customers)
			}
			nc := physics.NodeConfig{Section: sec, Device: -1, NormallyOpen: n.NormallyOpen, Tie: physics.NodeRef{Feeder: -1, Node: -1}}
			if n.ID != "" {
				// Duplicates are the topology's to report.
				if _, dup := nodes[n.ID]; !dup {
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
				if kind != topology.KindSwitch {
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
			case n.Reclose != nil && kind == topology.KindBreaker:
				nc.Reclose = c.reclose(n.Reclose, append(np, "reclose"), physics.Reclose{Reset: recloserDefault.Reset})
			case n.Reclose != nil:
				nc.Reclose = c.reclose(n.Reclose, append(np, "reclose"), recloserDefault)
			case kind == topology.KindRecloser:
				nc.Reclose = recloserDefault
			default:
				// Breakers trip to lockout unless told to reclose; the reset
				// time still ends a sectionalizer's count.
				nc.Reclose = physics.Reclose{Reset: recloserDefault.Reset}
			}
			switch {
			case n.Counts != 0 && kind != topology.KindSectionalizer:
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
		cfg.Feeders = append(cfg.Feeders, fc)
	}
	// A tie is a switch of one feeder that can feed a node of another: the
	// topology checks that it joins two feeders, as it does feederd's.
	specFeeder := map[int]int{} // ff index -> spec.Feeders index
	for k, i := range sp.feeders {
		specFeeder[i] = k
	}
	for _, t := range ties {
		w, ok := nodes[t.target]
		switch {
		case !ok:
			c.errf(t.p, "no node %q", t.target)
		case w == t.from:
			c.errf(t.p, "a switch cannot tie to itself")
		default:
			cfg.Feeders[t.from.feeder].Nodes[t.from.node].Tie = physics.NodeRef{Feeder: w.feeder, Node: w.node}
			k, in := specFeeder[w.feeder]
			if _, fromIn := specFeeder[t.from.feeder]; in && fromIn {
				fs := &spec.Feeders[k]
				fs.Ties = append(fs.Ties, topology.TieSpec{Device: ff[t.from.feeder].Nodes[t.from.node].ID, To: t.target})
				sp.ties = append(sp.ties, tiePlace{feeder: k, tie: len(fs.Ties) - 1, path: t.p})
			}
		}
	}
	top, err := topology.New(spec)
	c.topologyErrors(err, &sp)
	if top != nil {
		for i := range cfg.Feeders {
			cfg.Feeders[i].Topology = top.Feeder(ff[i].ID)
		}
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
}

// where is a node of the file: feeders[feeder].nodes[node].
type where struct{ feeder, node int }

// specPlaces says where the topology spec's nodes and feeders are in the
// file.
type specPlaces struct {
	nodes   []where
	feeders []int
	ties    []tiePlace
}

// tiePlace is the tie key of the switch node that spec.Feeders[feeder]
// .Ties[tie] came from.
type tiePlace struct {
	feeder, tie int
	path        []any
}

// path turns a topology path ("nodes", k, ... or "feeders", k, ...) into
// the file's ("feeders", i, "nodes", j, ... or "feeders", i, ...); a tie's
// is the tie key of its switch node.
func (sp *specPlaces) path(p []any) []any {
	if len(p) < 2 {
		return p
	}
	k, _ := p[1].(int)
	switch {
	case p[0] == "nodes" && k < len(sp.nodes):
		w := sp.nodes[k]
		return append(at("feeders", w.feeder, "nodes", w.node), p[2:]...)
	case p[0] == "feeders" && len(p) >= 4 && p[2] == "ties":
		for _, tp := range sp.ties {
			if tp.feeder == k && tp.tie == p[3] {
				return tp.path
			}
		}
	case p[0] == "feeders" && k < len(sp.feeders):
		return append(at("feeders", sp.feeders[k]), p[2:]...)
	}
	return p
}

// topologyErrors reports topology.New's errors at the file's key paths.
func (c *checker) topologyErrors(err error, sp *specPlaces) {
	if err == nil {
		return
	}
	var errs topology.Errors
	if !errors.As(err, &errs) {
		c.errf(at("feeders"), "%v", err) // New returns only Errors
		return
	}
	for _, e := range errs {
		c.errf(sp.path(e.Path), "%s", e.Msg)
	}
}

func kindList() string {
	s := make([]string, len(topology.Kinds))
	for i, k := range topology.Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

func (c *checker) reclose(r *fileReclose, p []any, def physics.Reclose) physics.Reclose {
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

func kindName(k topology.Kind) string {
	if k == "" {
		return "node without kind"
	}
	return string(k)
}
