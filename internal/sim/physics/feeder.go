package physics

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/feederd/feederd/internal/sim/devsrv"
	"github.com/feederd/feederd/internal/topology"
)

// The feeder physics: a deliberately simple, deterministic model of radial
// distribution feeders, good enough for a poller to see what it would see
// on real equipment (voltages, currents, power, breaker states and
// counters) and no more.
//
// Buses. Each node's section is a bus; each feeder's substation source is
// one more. A node's device joins its parent's bus (the root's: the
// source) to its own bus, and conducts unless it is a switching device
// (breaker, recloser, sectionalizer, switch) that is open. A tie switch
// also joins its own bus to the bus of its tie node by a wire, so closing
// it (its device) connects the two. Every step the live buses are found by
// a breadth-first walk from all sources at once, sources in feeder order
// and edges in node order: a bus belongs to the nearest source in hops,
// which is how a tie back-feeds a dead stretch of another feeder.
//
// Load. A node's section load is LoadKW × the daily curve (loadFactor) at
// the simulated time of day, split over the three phases with 1 % noise
// per phase and step. Loads are constant current: a sag does not change
// them. The load of every live bus flows towards its source.
//
// Voltage. The source bus is SourcePU with 0.2 % noise per phase and step.
// A bus is the voltage of the bus that feeds it minus DropPerMW × the
// three-phase MW flowing into it. Dead buses are 0.
//
// Measurements. A device measures at its head (the source side), so an
// open device still reads the voltage of its parent's bus while everything
// below it reads 0. Its current is the load fed through it: I = P / (3 ×
// V_nominal × pf) per phase, on the primary; a device whose nominal is
// lower (a meter on a 120 V secondary) reports it scaled by the voltage
// ratio, so that its power is the primary power. Power is V × I × pf of
// the measured voltage and current; energy integrates it over steps.
//
// Faults, protection and events are in protect.go.

// loadFactor is the daily load curve: the fraction of peak load at t's
// time of day, linear between the hourly points. The shape is a typical
// mixed residential and commercial feeder: a night minimum of 45 % around
// 04:00, a morning rise, a flat day and an evening peak at 18:00.
func loadFactor(t time.Time) float64 {
	curve := [24]float64{
		0.55, 0.50, 0.47, 0.45, 0.45, 0.50, 0.60, 0.72, 0.80, 0.82, 0.83, 0.84,
		0.85, 0.85, 0.86, 0.88, 0.93, 0.98, 1.00, 0.98, 0.92, 0.83, 0.72, 0.62,
	}
	h, m, s := t.Clock()
	x := float64(h) + float64(m)/60 + (float64(s)+float64(t.Nanosecond())/1e9)/3600
	i := int(x) % 24
	frac := x - math.Floor(x)
	return curve[i] + (curve[(i+1)%24]-curve[i])*frac
}

// Phases is a set of phases: bit 0 A, bit 1 B, bit 2 C.
type Phases uint8

const allPhases Phases = 7

// ParsePhases reads "A", "bc", "ABC"; "" is all three.
func ParsePhases(s string) (Phases, error) {
	if s == "" {
		return allPhases, nil
	}
	var p Phases
	for _, r := range strings.ToUpper(s) {
		switch r {
		case 'A', 'B', 'C':
			bit := Phases(1) << (r - 'A')
			if p&bit != 0 {
				return 0, fmt.Errorf("phases %q name %c twice", s, r)
			}
			p |= bit
		default:
			return 0, fmt.Errorf("phases %q: %q is not A, B or C", s, r)
		}
	}
	return p, nil
}

func (p Phases) has(k int) bool { return p&(1<<k) != 0 }

func (p Phases) String() string {
	var b strings.Builder
	for k := range 3 {
		if p.has(k) {
			b.WriteByte(byte('A' + k))
		}
	}
	return b.String()
}

// network is every simulated feeder of a run. Only the World that owns it
// touches it.
type network struct {
	feeders []*simFeeder
	nodes   []*simNode // by global index, which is also the node's bus
	edges   []busEdge
	// adj lists the edges of each bus: the node buses, then one source bus
	// per feeder.
	adj [][]int
	// devEdge is the edge of each node's device.
	devEdge []int

	// Results of energize, per bus.
	live   []bool
	from   []int // the bus that feeds it; -1 for a source or a dead bus
	via    []int // the edge it is fed through; -1
	source []int // the feeder whose source feeds it; -1 when dead
	order  []int // live buses, sources first, each after its feeder

	// Step scratch, per bus.
	load [][3]float64 // kW per phase of the bus's own section
	down [][3]float64 // kW per phase flowing into the bus
	volt [][3]float64 // pu
	// faultAmps per node: fault current through its device this step.
	faultAmps [][3]float64

	faults []*lineFault
	volts  []*voltEvent
	nextID uint64

	last    time.Time
	stepped bool
}

// busEdge joins buses a and b through the device of node dev, or by a
// tie's wire (dev -1), which always conducts.
type busEdge struct{ a, b, dev int }

type simFeeder struct {
	idx   int
	cfg   *FeederConfig
	first int // global index of its node 0
	root  int // global index of its root
	rng   *rand.Rand
	// This step's source voltage (pu), frequency and power factor.
	src      [3]float64
	freq, pf float64
}

// simNode is one node and its switching and protection state.
type simNode struct {
	g      int
	feeder *simFeeder
	node   *topology.Node
	cfg    *NodeConfig
	parent int // global index, -1 for a root

	closed, lockout bool
	// shots are the recloses of the current sequence, trips all trips
	// ever, count a sectionalizer's interruptions.
	shots, count int
	trips        uint64
	// gen changes with every switching operation, which makes the timers
	// set before it stale.
	gen         uint64
	tripPending bool

	out *deviceOut // nil without a device
}

func (n *simNode) id() string { return n.node.ID }

func (n *simNode) switching() bool { return n.node.Kind.Switching() }

func (n *simNode) conducts() bool { return !n.switching() || n.closed }

// bump records a switching operation: timers set before it are stale.
func (n *simNode) bump() {
	n.gen++
	n.tripPending = false
}

// deviceOut writes a node's readings into its device.
type deviceOut struct {
	dev *devsrv.Device
	// pins are points held at a value (config values, the control API's
	// set); the physics leaves them alone.
	pins      map[string]float64
	voltScale float64
	nominal   float64 // the device's 1 pu, in its own terms
	ratio     float64 // primary amperes to the device's amperes
	energy    float64 // Wh
}

// newNetwork builds feeders over devs (which their nodes index); nothing
// is written until the first step.
func newNetwork(feeders []FeederConfig, devs []DeviceSpec, seed uint64) *network {
	nw := &network{}
	for fi := range feeders {
		fc := &feeders[fi]
		h := fnv.New64a()
		h.Write([]byte("feeder/" + fc.Topology.ID))
		f := &simFeeder{idx: fi, cfg: fc, first: len(nw.nodes), rng: rand.New(rand.NewPCG(seed, h.Sum64()))}
		f.root = f.first + fc.Topology.Root()
		nw.feeders = append(nw.feeders, f)
		for ni := range fc.Topology.Nodes {
			gn := &fc.Topology.Nodes[ni]
			n := &simNode{g: len(nw.nodes), feeder: f, node: gn, cfg: &fc.Nodes[ni], parent: -1}
			if gn.Parent >= 0 {
				n.parent = f.first + gn.Parent
			}
			n.closed = !n.cfg.NormallyOpen
			if di := n.cfg.Device; di >= 0 {
				dc := &devs[di]
				d := dc.Device
				o := &deviceOut{dev: d, pins: map[string]float64{}, voltScale: voltScale(d.Profile), nominal: dc.NominalVoltage, ratio: 1}
				for k, v := range dc.Values {
					o.pins[k] = v
				}
				if vln := dc.NominalVoltage * o.voltScale; vln > 0 {
					if d.Profile.LineToLine {
						vln /= math.Sqrt(3)
					}
					o.ratio = fc.NominalVoltage / vln
				}
				// A meter in service shows a counter somewhere between 1
				// and 2 GWh; the device ID picks where.
				hd := fnv.New64a()
				hd.Write([]byte(d.ID))
				o.energy = 1e9 + float64(hd.Sum64()%1e9)
				n.out = o
			}
			nw.nodes = append(nw.nodes, n)
		}
	}
	nb := len(nw.nodes) + len(nw.feeders)
	nw.adj = make([][]int, nb)
	nw.devEdge = make([]int, len(nw.nodes))
	addEdge := func(a, b, dev int) int {
		nw.edges = append(nw.edges, busEdge{a, b, dev})
		e := len(nw.edges) - 1
		nw.adj[a] = append(nw.adj[a], e)
		nw.adj[b] = append(nw.adj[b], e)
		return e
	}
	for _, n := range nw.nodes {
		head := n.parent
		if head < 0 {
			head = len(nw.nodes) + n.feeder.idx
		}
		nw.devEdge[n.g] = addEdge(head, n.g, n.g)
	}
	for _, n := range nw.nodes {
		if t := n.cfg.Tie; t.Feeder >= 0 {
			addEdge(n.g, nw.feeders[t.Feeder].first+t.Node, -1)
		}
	}
	nw.live = make([]bool, nb)
	nw.from = make([]int, nb)
	nw.via = make([]int, nb)
	nw.source = make([]int, nb)
	nw.order = make([]int, 0, nb)
	nw.load = make([][3]float64, nb)
	nw.down = make([][3]float64, nb)
	nw.volt = make([][3]float64, nb)
	nw.faultAmps = make([][3]float64, len(nw.nodes))
	nw.energize()
	return nw
}

// sourceBus is the bus of feeder f's substation source.
func (nw *network) sourceBus(f int) int { return len(nw.nodes) + f }

// headBus is the bus node g's device measures: its parent's, or the source.
func (nw *network) headBus(g int) int {
	if p := nw.nodes[g].parent; p >= 0 {
		return p
	}
	return nw.sourceBus(nw.nodes[g].feeder.idx)
}

// energize finds the live buses from the switch states.
func (nw *network) energize() {
	for b := range nw.live {
		nw.live[b], nw.from[b], nw.via[b], nw.source[b] = false, -1, -1, -1
	}
	order := nw.order[:0]
	for f := range nw.feeders {
		s := nw.sourceBus(f)
		nw.live[s], nw.source[s] = true, f
		order = append(order, s)
	}
	for k := 0; k < len(order); k++ {
		b := order[k]
		for _, ei := range nw.adj[b] {
			e := &nw.edges[ei]
			if e.dev >= 0 && !nw.nodes[e.dev].conducts() {
				continue
			}
			o := e.a
			if o == b {
				o = e.b
			}
			if nw.live[o] {
				continue
			}
			nw.live[o], nw.from[o], nw.via[o], nw.source[o] = true, b, ei, nw.source[b]
			order = append(order, o)
		}
	}
	nw.order = order
}

// step computes every bus and writes every device's registers for time t.
func (nw *network) step(t time.Time) error {
	hours := 0.0
	if nw.stepped {
		hours = max(t.Sub(nw.last).Hours(), 0)
	}
	nw.last, nw.stepped = t, true
	lf := loadFactor(t)
	for _, f := range nw.feeders {
		c := f.cfg
		for k := range f.src {
			f.src[k] = c.SourcePU * (1 + 0.002*f.rng.NormFloat64())
		}
		f.freq = c.Frequency + 0.005*f.rng.NormFloat64()
		f.pf = clamp(c.PowerFactor+0.003*f.rng.NormFloat64(), 0.05, 1)
		for ni := range c.Topology.Nodes {
			g := f.first + ni
			kw := c.Nodes[ni].Section.LoadKW
			if kw == 0 {
				nw.load[g] = [3]float64{}
				continue
			}
			for k := range 3 {
				nw.load[g][k] = kw / 3 * lf * (1 + 0.01*f.rng.NormFloat64())
			}
		}
	}
	nw.energize()
	nw.expire(t)

	for b := range nw.down {
		nw.down[b] = [3]float64{}
		nw.volt[b] = [3]float64{}
	}
	for _, b := range nw.order {
		if b < len(nw.nodes) {
			nw.down[b] = nw.load[b]
		}
	}
	for k := len(nw.order) - 1; k >= 0; k-- {
		b := nw.order[k]
		if p := nw.from[b]; p >= 0 {
			for ph := range 3 {
				nw.down[p][ph] += nw.down[b][ph]
			}
		}
	}
	for _, b := range nw.order {
		if b >= len(nw.nodes) {
			f := nw.feeders[b-len(nw.nodes)]
			nw.volt[b] = f.src
			nw.faultSag(b)
		} else {
			drop := nw.nodes[b].feeder.cfg.DropPerMW * 3 / 1000 // pu per kW of one phase
			for ph := range 3 {
				nw.volt[b][ph] = max(0, nw.volt[nw.from[b]][ph]-drop*nw.down[b][ph])
			}
		}
		nw.applyVoltEvents(b)
	}
	nw.faultCurrents()

	for _, n := range nw.nodes {
		if n.out == nil {
			continue
		}
		if err := nw.write(n, hours); err != nil {
			return err
		}
	}
	return nil
}

// write computes node n's reading and stores it in its device.
func (nw *network) write(n *simNode, hours float64) error {
	o := n.out
	head := nw.headBus(n.g)
	e := nw.devEdge[n.g]
	var flow [3]float64
	switch e {
	case nw.via[n.g]:
		flow = nw.down[n.g]
	case nw.via[head]:
		flow = nw.down[head] // back-fed through this device
	}
	nomLN := n.feeder.cfg.NominalVoltage
	r := reading{noCurrent: true} // until current is found to flow
	r.closed = n.conducts()
	r.lockout = n.lockout
	r.shots = float64(n.shots)
	r.trips = float64(n.trips)
	if nw.live[head] {
		f := nw.feeders[nw.source[head]]
		r.pf, r.freq = f.pf, f.freq
		var apparent, total float64
		for ph := range 3 {
			vpu := nw.volt[head][ph]
			amps := nw.faultAmps[n.g][ph]
			if flow[ph] > 0 {
				amps += flow[ph] * 1000 / (nomLN * f.pf)
			}
			r.v[ph] = vpu * o.nominal
			r.i[ph] = amps * o.ratio
			apparent += vpu * nomLN * amps
			total += amps
		}
		r.noCurrent = total == 0
		r.apparent = apparent
		r.active = apparent * r.pf
		r.reactive = apparent * math.Sqrt(max(0, 1-r.pf*r.pf))
		r.in = neutral(r.i)
	}
	o.energy += r.active * hours
	r.energy = o.energy
	return o.dev.Update(func(tx devsrv.Tx) error {
		for i := range o.dev.Profile.Points {
			p := &o.dev.Profile.Points[i]
			v, pinned := o.pins[p.Name]
			if !pinned {
				var ok bool
				if v, ok = r.value(p, o.dev.Profile.LineToLine, o.voltScale); !ok {
					continue
				}
			}
			if err := tx.SetValue(p.Name, v); err != nil {
				return fmt.Errorf("write %s: %w", n.id(), err)
			}
		}
		return nil
	})
}

// neutral is the magnitude of the sum of three phase currents 120° apart.
func neutral(i [3]float64) float64 {
	a, b, c := i[0], i[1], i[2]
	return math.Sqrt(max(0, a*a+b*b+c*c-a*b-b*c-c*a))
}
