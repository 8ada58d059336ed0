package physics

import (
	"container/heap"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/feederd/feederd/internal/sim/devsrv"
)

// Spec is what a World is built from.
type Spec struct {
	// Tick is the step of the physics (positive).
	Tick time.Duration
	// Seed, with a feeder's or a device's ID, seeds every random generator.
	Seed uint64
	// Devices are the devices the physics writes; NodeConfig.Device
	// indexes them. Devices on no feeder get a Steady driver.
	Devices []DeviceSpec
	Feeders []FeederConfig
}

// DeviceSpec is a device and what the physics needs to drive it.
type DeviceSpec struct {
	Device *devsrv.Device
	// NominalVoltage is 1 pu in the device's own terms.
	NominalVoltage float64
	// Current per phase of a Steady driver (0: its default). A device on a
	// feeder measures the current of its feeder instead.
	Current float64
	// Values are points held at a value: the physics leaves them alone.
	Values map[string]float64
}

// World is the physics of a run: the feeders, the drivers of the devices
// on no feeder, and the timeline of timers on simulated time.
//
// Time. Simulated time only moves through AdvanceTo. The physics steps on
// a fixed grid, start + k × Tick, and writes every register at each step;
// timers run at their own instants, before the step of the same instant.
// All randomness comes from generators seeded by Spec.Seed and the feeder
// or device ID, and nothing iterates over a map, so a seed, a start time
// and the same timers always produce the same registers at the same
// simulated times, however often AdvanceTo is called.
//
// A World is not safe for concurrent use: its owner (rtusim's Sim) holds
// a lock around every call. Its devices are safe for concurrent use.
type World struct {
	devs    []*devsrv.Device
	net     *network
	steady  []*Steady // by device; nil for a device on a feeder
	nodeOf  []int     // by device: its node's global index, or -1
	targets map[string]Target

	tick             time.Duration
	start, now, next time.Time
	queue            timeline
	seq              uint64
}

// Target is what a name of the World stands for: a feeder (Node -1 means
// its source), a node, a device, or a node with its device. Feeder, Node
// and Dev are -1 where they do not apply; Node is a global node index.
type Target struct{ Feeder, Node, Dev int }

// New builds the feeders and drivers of spec and performs the first step
// at start (the simulated start time).
func New(spec Spec, start time.Time) (*World, error) {
	if spec.Tick <= 0 {
		return nil, fmt.Errorf("build simulation: tick %s is not positive", spec.Tick)
	}
	w := &World{
		targets: map[string]Target{},
		tick:    spec.Tick,
		start:   start,
		now:     start,
		next:    start,
	}
	for _, ds := range spec.Devices {
		w.devs = append(w.devs, ds.Device)
	}
	w.net = newNetwork(spec.Feeders, spec.Devices, spec.Seed)
	w.nodeOf = make([]int, len(w.devs))
	w.steady = make([]*Steady, len(w.devs))
	for i := range w.nodeOf {
		w.nodeOf[i] = -1
	}
	for _, n := range w.net.nodes {
		if di := n.cfg.Device; di >= 0 {
			w.nodeOf[di] = n.g
		}
	}
	for i, ds := range spec.Devices {
		if w.nodeOf[i] >= 0 {
			continue
		}
		drv, err := NewSteady(ds.Device, SteadyConfig{Nominal: ds.NominalVoltage, Current: ds.Current, Seed: spec.Seed, Fixed: maps.Clone(ds.Values)})
		if err != nil {
			return nil, err
		}
		w.steady[i] = drv
	}
	for f, fc := range spec.Feeders {
		w.targets[fc.Topology.ID] = Target{Feeder: f, Node: -1, Dev: -1}
	}
	for _, n := range w.net.nodes {
		w.targets[n.id()] = Target{Feeder: n.feeder.idx, Node: n.g, Dev: n.cfg.Device}
	}
	for i, d := range w.devs {
		if _, isNode := w.targets[d.ID]; isNode {
			continue
		}
		t := Target{Feeder: -1, Node: w.nodeOf[i], Dev: i}
		if t.Node >= 0 {
			t.Feeder = w.net.nodes[t.Node].feeder.idx
		}
		w.targets[d.ID] = t
	}
	if err := w.AdvanceTo(start); err != nil {
		return nil, err
	}
	return w, nil
}

// timer is an entry of the timeline.
type timer struct {
	at  time.Time
	seq uint64
	fn  func(now time.Time)
}

// timeline is a heap of timers by time, then by the order they were set.
type timeline []timer

func (q timeline) Len() int { return len(q) }
func (q timeline) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q timeline) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *timeline) Push(x any)   { *q = append(*q, x.(timer)) }
func (q *timeline) Pop() any {
	old := *q
	t := old[len(old)-1]
	*q = old[:len(old)-1]
	return t
}

// After runs fn at simulated time at (now, if at has passed), in the
// order timers were set among those of the same instant. It is also the
// network's scheduler.
func (w *World) After(at time.Time, fn func(now time.Time)) {
	if at.Before(w.now) {
		at = w.now
	}
	w.seq++
	heap.Push(&w.queue, timer{at: at, seq: w.seq, fn: fn})
}

// Pending is the number of timers not run yet.
func (w *World) Pending() int { return len(w.queue) }

// AdvanceTo moves simulated time to t, running every timer and physics
// step up to it in order. A t before the World's time does nothing.
func (w *World) AdvanceTo(t time.Time) error {
	for {
		if len(w.queue) > 0 {
			e := w.queue[0]
			if !e.at.After(t) && !e.at.After(w.next) {
				heap.Pop(&w.queue)
				if e.at.After(w.now) {
					w.now = e.at
				}
				e.fn(e.at)
				continue
			}
		}
		if w.next.After(t) {
			break
		}
		w.now = w.next
		if err := w.step(w.next); err != nil {
			return fmt.Errorf("step at %s: %w", w.next.Sub(w.start), err)
		}
		w.next = w.next.Add(w.tick)
	}
	if t.After(w.now) {
		w.now = t
	}
	return nil
}

func (w *World) step(t time.Time) error {
	if err := w.net.step(t); err != nil {
		return err
	}
	for _, drv := range w.steady {
		if drv == nil {
			continue
		}
		if err := drv.Tick(t); err != nil {
			return err
		}
	}
	return nil
}

// Now returns the simulated time reached.
func (w *World) Now() time.Time { return w.now }

// Start returns the simulated start time.
func (w *World) Start() time.Time { return w.start }

// Next returns the time of the next physics step.
func (w *World) Next() time.Time { return w.next }

// Tick returns the step of the physics.
func (w *World) Tick() time.Duration { return w.tick }

// Lookup returns what name (a feeder, node or device ID) stands for.
func (w *World) Lookup(name string) (Target, bool) {
	t, ok := w.targets[name]
	return t, ok
}

// Switching says whether t is a node whose device opens and closes
// (breakers, reclosers, sectionalizers and switches).
func (w *World) Switching(t Target) bool {
	return t.Node >= 0 && w.net.nodes[t.Node].switching()
}

// Describe says what t is, for messages: "a recloser on feeder F1", "a
// feeder", "a device on no feeder".
func (w *World) Describe(t Target) string {
	switch {
	case t.Node >= 0:
		n := w.net.nodes[t.Node]
		return fmt.Sprintf("a %s on feeder %s", n.node.Kind, n.feeder.cfg.Topology.ID)
	case t.Feeder >= 0:
		return "a feeder"
	}
	return "a device on no feeder"
}

// Fault puts a fault on node's section at now: see protect.go.
func (w *World) Fault(node int, ph Phases, permanent bool, clearAfter time.Duration, amps float64, now time.Time) {
	w.net.addFault(node, ph, permanent, clearAfter, amps, now, w.After)
}

// ClearFaults removes the faults on node's section.
func (w *World) ClearFaults(node int) { w.net.clearFaults(node) }

// Voltage holds the phases ph of t's bus (a node's section, or a feeder's
// source when t is a feeder) at mag pu until until: a sag or a swell.
func (w *World) Voltage(t Target, ph Phases, mag float64, until time.Time) {
	bus := t.Node
	if bus < 0 {
		bus = w.net.sourceBus(t.Feeder)
	}
	w.net.addVoltEvent(bus, ph, mag, until)
}

// Operate opens or closes node's switching device at now, as a command
// does (a close also ends a lockout).
func (w *World) Operate(node int, closeIt bool, now time.Time) error {
	return w.net.operate(w.net.nodes[node], closeIt, now, w.After)
}

// Pin holds a device's point at v and writes it now; it returns the value
// as the device now reports it (after the point's encoding).
func (w *World) Pin(dev int, point string, v float64) (float64, error) {
	d := w.devs[dev]
	if err := d.SetValue(point, v); err != nil {
		return 0, err
	}
	if g := w.nodeOf[dev]; g >= 0 {
		w.net.nodes[g].out.pins[point] = v
	} else if drv := w.steady[dev]; drv != nil {
		fixed := maps.Clone(drv.cfg.Fixed)
		if fixed == nil {
			fixed = map[string]float64{}
		}
		fixed[point] = v
		drv.cfg.Fixed = fixed
	}
	return d.Value(point)
}

// Release lets the physics drive a pinned point again from the next step.
func (w *World) Release(dev int, point string) error {
	if d := w.devs[dev]; d.CheckPoint(point) != nil {
		return fmt.Errorf("device %s has no point %q", d.ID, point)
	}
	if g := w.nodeOf[dev]; g >= 0 {
		delete(w.net.nodes[g].out.pins, point)
	} else if drv := w.steady[dev]; drv != nil && drv.cfg.Fixed != nil {
		fixed := maps.Clone(drv.cfg.Fixed)
		delete(fixed, point)
		drv.cfg.Fixed = fixed
	}
	return nil
}

// Placement is where a device sits and what the physics holds of it.
type Placement struct {
	// Feeder, Node and Kind place a device on a feeder ("" on none);
	// Energized says whether its head (where it measures) is live.
	Feeder, Node, Kind string
	Energized          *bool
	// Pinned lists the points held by Pin or Spec values, sorted.
	Pinned []string
}

// Place returns device dev's placement.
func (w *World) Place(dev int) Placement {
	var p Placement
	var pins map[string]float64
	if g := w.nodeOf[dev]; g >= 0 {
		n := w.net.nodes[g]
		live := w.net.live[w.net.headBus(g)]
		p.Feeder, p.Node, p.Kind, p.Energized = n.feeder.cfg.Topology.ID, n.id(), string(n.node.Kind), &live
		pins = n.out.pins
	} else if drv := w.steady[dev]; drv != nil {
		pins = drv.cfg.Fixed
	}
	p.Pinned = slices.Sorted(maps.Keys(pins))
	return p
}

// FeederState is a feeder's entry in rtusim's GET /api/feeders.
type FeederState struct {
	ID    string      `json:"id"`
	Nodes []NodeState `json:"nodes"`
}

// NodeState is the switching and protection state of one node.
type NodeState struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Device string `json:"device,omitempty"`
	// Energized: the node's section is live. FedBy names the feeder whose
	// source feeds it, when that is not its own (through a tie).
	Energized bool   `json:"energized"`
	FedBy     string `json:"fed_by,omitempty"`
	// Closed is set for switching nodes only.
	Closed  *bool  `json:"closed,omitempty"`
	Lockout bool   `json:"lockout,omitempty"`
	Shots   int    `json:"shots,omitempty"`
	Trips   uint64 `json:"trips,omitempty"`
	Faults  int    `json:"faults,omitempty"`
	LoadKW  int    `json:"load_kw,omitempty"`
}

// Feeders returns the state of every feeder's nodes.
func (w *World) Feeders() []FeederState {
	nw := w.net
	out := make([]FeederState, len(nw.feeders))
	for fi, f := range nw.feeders {
		fs := FeederState{ID: f.cfg.Topology.ID}
		for ni := range f.cfg.Topology.Nodes {
			n := nw.nodes[f.first+ni]
			ns := NodeState{ID: n.id(), Kind: string(n.node.Kind), Energized: nw.live[n.g], Lockout: n.lockout, Shots: n.shots, Trips: n.trips}
			if n.cfg.Device >= 0 {
				ns.Device = w.devs[n.cfg.Device].ID
			}
			if src := nw.source[n.g]; src >= 0 && src != fi {
				ns.FedBy = nw.feeders[src].cfg.Topology.ID
			}
			if n.switching() {
				closed := n.closed
				ns.Closed = &closed
			}
			for _, fl := range nw.faults {
				if fl.bus == n.g {
					ns.Faults++
				}
			}
			if nw.live[n.g] {
				ns.LoadKW = int(nw.down[n.g][0] + nw.down[n.g][1] + nw.down[n.g][2] + 0.5)
			}
			fs.Nodes = append(fs.Nodes, ns)
		}
		out[fi] = fs
	}
	return out
}
