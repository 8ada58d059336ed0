package sim

import (
	"container/heap"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sim/devsrv"
)

// Sim is a simulation built from a Config: the devices, the feeders they
// sit on, the drivers of the devices on no feeder, and the timeline of
// scenario events and protection timers.
//
// Time. Simulated time only moves through AdvanceTo (Run calls it from
// its Clock). The physics steps on a fixed grid, start + k × Config.Tick,
// and writes every register at each step; events and timers run at their
// own instants, before the step of the same instant. All randomness comes
// from generators seeded by Config.Seed and the feeder or device ID, and
// nothing iterates over a map, so a seed, a start time and a scenario
// always produce the same registers at the same simulated times, however
// the clock wakes the simulation.
type Sim struct {
	// Devices in Config.Devices order. They are safe for concurrent use;
	// everything else of a Sim is reached through its methods.
	Devices []*devsrv.Device

	mu      sync.Mutex
	cfg     *Config
	net     *network
	steady  []*Steady // by device; nil for a device on a feeder
	nodeOf  []int     // by device: its node's global index, or -1
	targets map[string]target
	urls    map[*devsrv.Device]string
	log     *slog.Logger

	tick             time.Duration
	start, now, next time.Time
	queue            timeline
	seq              uint64
	// scenario is the generation of the scenario in play: loading another
	// one makes the pending events of the previous one stale.
	scenario uint64

	// The mapping from clock time to simulated time (see attach).
	clock              Clock
	scale              float64
	paused             bool
	simBase, clockBase time.Time
}

// target is what an event's target names: a feeder (node -1 means its
// source), a node, a device, or a node with its device.
type target struct{ feeder, node, dev int }

// Build creates the devices of cfg, their feeders and drivers, and
// performs the first step at start (the simulated start time).
func Build(cfg *Config, start time.Time) (*Sim, error) {
	if cfg.Tick <= 0 {
		return nil, fmt.Errorf("build simulation: tick %s is not positive", cfg.Tick)
	}
	s := &Sim{
		cfg:     cfg,
		targets: map[string]target{},
		urls:    map[*devsrv.Device]string{},
		log:     slog.New(slog.DiscardHandler),
		tick:    cfg.Tick,
		start:   start,
		now:     start,
		next:    start,
		scale:   1,
	}
	for _, dc := range cfg.Devices {
		d, err := devsrv.NewDevice(dc.ID, dc.Unit, dc.Profile)
		if err != nil {
			return nil, err
		}
		for _, name := range slices.Sorted(maps.Keys(dc.Strings)) {
			if err := d.SetString(name, dc.Strings[name]); err != nil {
				return nil, err
			}
		}
		s.Devices = append(s.Devices, d)
	}
	s.net = newNetwork(cfg, s.Devices, cfg.Seed)
	s.nodeOf = make([]int, len(s.Devices))
	s.steady = make([]*Steady, len(s.Devices))
	for i := range s.nodeOf {
		s.nodeOf[i] = -1
	}
	for _, n := range s.net.nodes {
		if di := n.cfg.Device; di >= 0 {
			s.nodeOf[di] = n.g
		}
	}
	for i, dc := range cfg.Devices {
		if s.nodeOf[i] >= 0 {
			continue
		}
		drv, err := NewSteady(s.Devices[i], SteadyConfig{Nominal: dc.NominalVoltage, Current: dc.Current, Seed: cfg.Seed, Fixed: maps.Clone(dc.Values)})
		if err != nil {
			return nil, err
		}
		s.steady[i] = drv
	}
	for f, fc := range cfg.Feeders {
		s.targets[fc.Topology.ID] = target{feeder: f, node: -1, dev: -1}
	}
	for _, n := range s.net.nodes {
		s.targets[n.id()] = target{feeder: n.feeder.idx, node: n.g, dev: n.cfg.Device}
	}
	for i, d := range s.Devices {
		if _, isNode := s.targets[d.ID]; isNode {
			continue
		}
		t := target{feeder: -1, node: s.nodeOf[i], dev: i}
		if t.node >= 0 {
			t.feeder = s.net.nodes[t.node].feeder.idx
		}
		s.targets[d.ID] = t
	}
	if err := s.advance(start); err != nil {
		return nil, err
	}
	return s, nil
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

// after runs fn at simulated time at (now, if at has passed). It is the
// network's scheduler.
func (s *Sim) after(at time.Time, fn func(now time.Time)) {
	if at.Before(s.now) {
		at = s.now
	}
	s.seq++
	heap.Push(&s.queue, timer{at: at, seq: s.seq, fn: fn})
}

// AdvanceTo moves simulated time to t, running every timer and physics
// step up to it in order. A t before the simulation's time does nothing.
func (s *Sim) AdvanceTo(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.advance(t)
}

func (s *Sim) advance(t time.Time) error {
	for {
		if len(s.queue) > 0 {
			e := s.queue[0]
			if !e.at.After(t) && !e.at.After(s.next) {
				heap.Pop(&s.queue)
				if e.at.After(s.now) {
					s.now = e.at
				}
				e.fn(e.at)
				continue
			}
		}
		if s.next.After(t) {
			break
		}
		s.now = s.next
		if err := s.step(s.next); err != nil {
			return fmt.Errorf("step at %s: %w", s.next.Sub(s.start), err)
		}
		s.next = s.next.Add(s.tick)
	}
	if t.After(s.now) {
		s.now = t
	}
	return nil
}

func (s *Sim) step(t time.Time) error {
	if err := s.net.step(t); err != nil {
		return err
	}
	for _, drv := range s.steady {
		if drv == nil {
			continue
		}
		if err := drv.Tick(t); err != nil {
			return err
		}
	}
	return nil
}

// Now returns the simulated time the simulation has reached.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// Play checks sc's targets and schedules its events from the current
// simulated time. Events of a scenario played before that have not
// happened yet are dropped. The scenario's seed, start and time scale are
// the caller's business (Run applies them).
func (s *Sim) Play(sc *Scenario) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.play(sc)
}

func (s *Sim) play(sc *Scenario) error {
	if err := s.checkScenario(sc); err != nil {
		return err
	}
	s.scenario++
	gen, base := s.scenario, s.now
	for i := range sc.Events {
		ev := sc.Events[i]
		s.after(base.Add(ev.offset), func(now time.Time) {
			if s.scenario != gen {
				return
			}
			if err := s.apply(&ev, now); err != nil {
				s.log.Warn("scenario event failed", "source", sc.Source, "event", i, "action", string(ev.Action), "target", ev.Target, "err", err)
				return
			}
			s.log.Info("scenario event", "source", sc.Source, "event", i, "action", string(ev.Action), "target", ev.Target, "at", now.Sub(s.start).String())
		})
	}
	return nil
}

// CheckScenario checks that every event of sc names a target that exists
// and fits its action; messages carry the scenario's file and line.
func (s *Sim) CheckScenario(sc *Scenario) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkScenario(sc)
}

func (s *Sim) checkScenario(sc *Scenario) error {
	root := sc.root
	if root == nil {
		root = &yaml.Node{}
	}
	c := checker{path: sc.Source, root: root}
	for i := range sc.Events {
		for _, fe := range s.checkTarget(&sc.Events[i]) {
			c.errf(at("events", i, fe.key), "%s", fe.msg)
		}
	}
	return c.err()
}

// Inject checks ev and applies it now, or ev.After from now. It must not
// set At.
func (s *Sim) Inject(ev Event) error {
	var errs []error
	if ev.At != nil {
		errs = append(errs, fieldError{"at", "an injected event happens now or after a delay: use after"})
		ev.At = nil
	}
	for _, fe := range ev.check() {
		errs = append(errs, fe)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sync(); err != nil {
		return err
	}
	for _, fe := range s.checkTarget(&ev) {
		errs = append(errs, fe)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if ev.After != nil && ev.After.D() > 0 {
		s.after(s.now.Add(ev.After.D()), func(now time.Time) {
			if err := s.apply(&ev, now); err != nil {
				s.log.Warn("injected event failed", "action", string(ev.Action), "target", ev.Target, "err", err)
			}
		})
		return nil
	}
	return s.apply(&ev, s.now)
}

// checkTarget checks that ev's target exists and suits its action, and
// that the points it names exist.
func (s *Sim) checkTarget(ev *Event) []fieldError {
	if ev.Target == "" {
		return nil // check reported it
	}
	t, ok := s.targets[ev.Target]
	if !ok {
		return []fieldError{{"target", fmt.Sprintf("no feeder, node or device %q", ev.Target)}}
	}
	var errs []fieldError
	bad := func(key, format string, args ...any) {
		errs = append(errs, fieldError{key, fmt.Sprintf(format, args...)})
	}
	switch ev.Action {
	case ActionFault, ActionClearFault:
		if t.node < 0 {
			bad("target", "%s is %s: a fault is on a node's section", ev.Target, s.describe(t))
		}
	case ActionSag, ActionSwell:
		if t.node < 0 && t.feeder < 0 {
			bad("target", "%s is %s: a %s is on a feeder or a node", ev.Target, s.describe(t), ev.Action)
		}
	case ActionOpen, ActionClose:
		if t.node < 0 || !s.net.nodes[t.node].switching() {
			bad("target", "%s is %s: only breakers, reclosers, sectionalizers and switches open and close", ev.Target, s.describe(t))
		}
	default:
		if t.dev < 0 {
			bad("target", "%s is %s: %s needs a device", ev.Target, s.describe(t), ev.Action)
			break
		}
		d := s.Devices[t.dev]
		names := ev.Points
		if ev.Point != "" {
			names = []string{ev.Point}
		}
		key := "points"
		if ev.Action == ActionSet || ev.Action == ActionRelease {
			key = "point"
		}
		for _, name := range names {
			p := pointOf(d.Profile, name)
			switch {
			case p == nil:
				bad(key, "device %s (profile %s) has no point %q", d.ID, d.Profile.Name, name)
			case ev.Action == ActionSet && p.Type == profile.String:
				bad(key, "%s is a string point: set takes numbers", name)
			}
		}
	}
	return errs
}

func (s *Sim) describe(t target) string {
	switch {
	case t.node >= 0:
		n := s.net.nodes[t.node]
		return fmt.Sprintf("a %s on feeder %s", n.node.Kind, n.feeder.cfg.Topology.ID)
	case t.feeder >= 0:
		return "a feeder"
	}
	return "a device on no feeder"
}

func pointOf(p *profile.Profile, name string) *profile.Point {
	for i := range p.Points {
		if p.Points[i].Name == name {
			return &p.Points[i]
		}
	}
	return nil
}

// apply carries out a checked event at now.
func (s *Sim) apply(ev *Event, now time.Time) error {
	t, ok := s.targets[ev.Target]
	if !ok {
		return fmt.Errorf("%s %s: no such target", ev.Action, ev.Target)
	}
	ph, err := parsePhases(ev.Phases)
	if err != nil {
		return err
	}
	switch ev.Action {
	case ActionFault:
		amps := float64(defaultFaultAmps)
		if ev.Current != nil {
			amps = *ev.Current
		}
		var clearAfter time.Duration
		if ev.ClearAfter != nil {
			clearAfter = ev.ClearAfter.D()
		}
		s.net.addFault(t.node, ph, ev.Permanent != nil && *ev.Permanent, clearAfter, amps, now, s.after)
		return nil
	case ActionClearFault:
		s.net.clearFaults(t.node)
		return nil
	case ActionSag, ActionSwell:
		bus := t.node
		if bus < 0 {
			bus = s.net.sourceBus(t.feeder)
		}
		s.net.addVoltEvent(bus, ph, *ev.Magnitude, now.Add(ev.Duration.D()))
		return nil
	case ActionOpen, ActionClose:
		return s.net.operate(s.net.nodes[t.node], ev.Action == ActionClose, now, s.after)
	case ActionSet:
		_, err := s.pin(t.dev, ev.Point, *ev.Value)
		return err
	case ActionRelease:
		return s.release(t.dev, ev.Point)
	}
	d := s.Devices[t.dev]
	f := d.Fault()
	switch ev.Action {
	case ActionCommsLoss:
		if ev.Mode == "refuse" {
			f.Refuse = true
		} else {
			f.Silent = true
		}
	case ActionCommsRestore:
		f = devsrv.Fault{}
	case ActionException:
		code := 2
		if ev.Code != nil {
			code = *ev.Code
		}
		if f.Exceptions == nil {
			f.Exceptions = map[string]byte{}
		}
		for _, p := range ev.Points {
			if code == 0 {
				delete(f.Exceptions, p)
			} else {
				f.Exceptions[p] = byte(code)
			}
		}
	case ActionLatency:
		f.Latency = ev.Delay.D()
	case ActionBadCRC:
		f.BadCRC = true
	case ActionHalfOpen:
		f.HalfOpen = true
	default:
		return fmt.Errorf("unknown action %q", ev.Action)
	}
	if err := d.CheckFault(f); err != nil {
		return err
	}
	d.SetFault(f)
	return nil
}

// pin holds a device's point at v and writes it now; it returns the value
// as the device now reports it (after the point's encoding).
func (s *Sim) pin(dev int, point string, v float64) (float64, error) {
	d := s.Devices[dev]
	if err := d.SetValue(point, v); err != nil {
		return 0, err
	}
	if g := s.nodeOf[dev]; g >= 0 {
		s.net.nodes[g].out.pins[point] = v
	} else if drv := s.steady[dev]; drv != nil {
		fixed := maps.Clone(drv.cfg.Fixed)
		if fixed == nil {
			fixed = map[string]float64{}
		}
		fixed[point] = v
		drv.cfg.Fixed = fixed
	}
	return d.Value(point)
}

// release lets the physics drive a pinned point again from the next step.
func (s *Sim) release(dev int, point string) error {
	if pointOf(s.Devices[dev].Profile, point) == nil {
		return fmt.Errorf("device %s has no point %q", s.Devices[dev].ID, point)
	}
	if g := s.nodeOf[dev]; g >= 0 {
		delete(s.net.nodes[g].out.pins, point)
	} else if drv := s.steady[dev]; drv != nil && drv.cfg.Fixed != nil {
		fixed := maps.Clone(drv.cfg.Fixed)
		delete(fixed, point)
		drv.cfg.Fixed = fixed
	}
	return nil
}

// SetPoint holds a device's point at v (as the set action does) and
// returns the value the device now reports.
func (s *Sim) SetPoint(device, point string, v float64) (float64, error) {
	ev := Event{Action: ActionSet, Target: device, Point: point, Value: &v}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sync(); err != nil {
		return 0, err
	}
	if errs := append(ev.check(), s.checkTarget(&ev)...); len(errs) > 0 {
		var joined []error
		for _, fe := range errs {
			joined = append(joined, fe)
		}
		return 0, errors.Join(joined...)
	}
	return s.pin(s.targets[device].dev, point, v)
}

// DeviceState is a device's entry in GET /api/devices.
type DeviceState struct {
	ID      string `json:"id"`
	Unit    uint8  `json:"unit"`
	Profile string `json:"profile"`
	URL     string `json:"url"`
	// Feeder, Node and Kind place a device that sits on a feeder;
	// Energized says whether its head (where it measures) is live.
	Feeder    string `json:"feeder,omitempty"`
	Node      string `json:"node,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Energized *bool  `json:"energized,omitempty"`
	// Comms is the injected protocol fault, if any.
	Comms *CommsState `json:"comms,omitempty"`
	// Pinned lists the points held by set (or by values in the config).
	Pinned []string       `json:"pinned,omitempty"`
	Values map[string]any `json:"values"`
}

// CommsState is a device's Fault as JSON.
type CommsState struct {
	Silent     bool            `json:"silent,omitempty"`
	Refuse     bool            `json:"refuse,omitempty"`
	HalfOpen   bool            `json:"half_open,omitempty"`
	BadCRC     bool            `json:"bad_crc,omitempty"`
	Latency    string          `json:"latency,omitempty"`
	Exceptions map[string]byte `json:"exceptions,omitempty"`
}

// States returns every device's current state.
func (s *Sim) States() []DeviceState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DeviceState, len(s.Devices))
	for i := range s.Devices {
		out[i] = s.state(i)
	}
	return out
}

// State returns one device's state by ID.
func (s *Sim) State(id string) (DeviceState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, d := range s.Devices {
		if d.ID == id {
			return s.state(i), true
		}
	}
	return DeviceState{}, false
}

func (s *Sim) state(i int) DeviceState {
	d := s.Devices[i]
	st := DeviceState{ID: d.ID, Unit: d.Unit, Profile: d.Profile.Name, URL: s.urls[d], Values: d.Values()}
	var pins map[string]float64
	if g := s.nodeOf[i]; g >= 0 {
		n := s.net.nodes[g]
		live := s.net.live[s.net.headBus(g)]
		st.Feeder, st.Node, st.Kind, st.Energized = n.feeder.cfg.Topology.ID, n.id(), string(n.node.Kind), &live
		pins = n.out.pins
	} else if drv := s.steady[i]; drv != nil {
		pins = drv.cfg.Fixed
	}
	st.Pinned = slices.Sorted(maps.Keys(pins))
	if f := d.Fault(); !f.IsZero() {
		cs := &CommsState{Silent: f.Silent, Refuse: f.Refuse, HalfOpen: f.HalfOpen, BadCRC: f.BadCRC, Exceptions: f.Exceptions}
		if f.Latency > 0 {
			cs.Latency = f.Latency.String()
		}
		st.Comms = cs
	}
	return st
}

// FeederState is a feeder's entry in GET /api/feeders.
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
func (s *Sim) Feeders() []FeederState {
	s.mu.Lock()
	defer s.mu.Unlock()
	nw := s.net
	out := make([]FeederState, len(nw.feeders))
	for fi, f := range nw.feeders {
		fs := FeederState{ID: f.cfg.Topology.ID}
		for ni := range f.cfg.Topology.Nodes {
			n := nw.nodes[f.first+ni]
			ns := NodeState{ID: n.id(), Kind: string(n.node.Kind), Energized: nw.live[n.g], Lockout: n.lockout, Shots: n.shots, Trips: n.trips}
			if n.cfg.Device >= 0 {
				ns.Device = s.Devices[n.cfg.Device].ID
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
