package sim

import (
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
	"github.com/feederd/feederd/internal/sim/physics"
)

// Sim is a simulation built from a Config: its devices and the physics
// World that drives them (internal/sim/physics), the scenarios and events
// played on it, and the mapping from a Clock to simulated time.
//
// Time. Simulated time only moves through AdvanceTo (Run calls it from
// its Clock); the World says how it steps. Scenario events and injected
// events are timers on the World's timeline, so a seed, a start time and
// a scenario always produce the same registers at the same simulated
// times, however the clock wakes the simulation.
type Sim struct {
	// Devices in Config.Devices order. They are safe for concurrent use;
	// everything else of a Sim is reached through its methods.
	Devices []*devsrv.Device

	mu   sync.Mutex
	cfg  *Config
	w    *physics.World
	urls map[*devsrv.Device]string
	log  *slog.Logger

	// scenario is the generation of the scenario in play: loading another
	// one makes the pending events of the previous one stale.
	scenario uint64

	// The mapping from clock time to simulated time (see attach).
	clock              Clock
	scale              float64
	paused             bool
	simBase, clockBase time.Time
}

// Build creates the devices of cfg and the physics that drives them, and
// performs the first step at start (the simulated start time).
func Build(cfg *Config, start time.Time) (*Sim, error) {
	if cfg.Tick <= 0 {
		return nil, fmt.Errorf("build simulation: tick %s is not positive", cfg.Tick)
	}
	s := &Sim{
		cfg:   cfg,
		urls:  map[*devsrv.Device]string{},
		log:   slog.New(slog.DiscardHandler),
		scale: 1,
	}
	spec := physics.Spec{Tick: cfg.Tick, Seed: cfg.Seed, Feeders: cfg.Feeders}
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
		spec.Devices = append(spec.Devices, physics.DeviceSpec{Device: d, NominalVoltage: dc.NominalVoltage, Current: dc.Current, Values: dc.Values})
	}
	w, err := physics.New(spec, start)
	if err != nil {
		return nil, err
	}
	s.w = w
	return s, nil
}

// AdvanceTo moves simulated time to t, running every timer and physics
// step up to it in order. A t before the simulation's time does nothing.
func (s *Sim) AdvanceTo(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.AdvanceTo(t)
}

// Now returns the simulated time the simulation has reached.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Now()
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
	gen, base := s.scenario, s.w.Now()
	for i := range sc.Events {
		ev := sc.Events[i]
		s.w.After(base.Add(ev.offset), func(now time.Time) {
			if s.scenario != gen {
				return
			}
			if err := s.apply(&ev, now); err != nil {
				s.log.Warn("scenario event failed", "source", sc.Source, "event", i, "action", string(ev.Action), "target", ev.Target, "err", err)
				return
			}
			s.log.Info("scenario event", "source", sc.Source, "event", i, "action", string(ev.Action), "target", ev.Target, "at", now.Sub(s.w.Start()).String())
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
		s.w.After(s.w.Now().Add(ev.After.D()), func(now time.Time) {
			if err := s.apply(&ev, now); err != nil {
				s.log.Warn("injected event failed", "action", string(ev.Action), "target", ev.Target, "err", err)
			}
		})
		return nil
	}
	return s.apply(&ev, s.w.Now())
}

// checkTarget checks that ev's target exists and suits its action, and
// that the points it names exist.
func (s *Sim) checkTarget(ev *Event) []fieldError {
	if ev.Target == "" {
		return nil // check reported it
	}
	t, ok := s.w.Lookup(ev.Target)
	if !ok {
		return []fieldError{{"target", fmt.Sprintf("no feeder, node or device %q", ev.Target)}}
	}
	var errs []fieldError
	bad := func(key, format string, args ...any) {
		errs = append(errs, fieldError{key, fmt.Sprintf(format, args...)})
	}
	switch ev.Action {
	case ActionFault, ActionClearFault:
		if t.Node < 0 {
			bad("target", "%s is %s: a fault is on a node's section", ev.Target, s.w.Describe(t))
		}
	case ActionSag, ActionSwell:
		if t.Node < 0 && t.Feeder < 0 {
			bad("target", "%s is %s: a %s is on a feeder or a node", ev.Target, s.w.Describe(t), ev.Action)
		}
	case ActionOpen, ActionClose:
		if !s.w.Switching(t) {
			bad("target", "%s is %s: only breakers, reclosers, sectionalizers and switches open and close", ev.Target, s.w.Describe(t))
		}
	default:
		if t.Dev < 0 {
			bad("target", "%s is %s: %s needs a device", ev.Target, s.w.Describe(t), ev.Action)
			break
		}
		d := s.Devices[t.Dev]
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
	t, ok := s.w.Lookup(ev.Target)
	if !ok {
		return fmt.Errorf("%s %s: no such target", ev.Action, ev.Target)
	}
	ph, err := physics.ParsePhases(ev.Phases)
	if err != nil {
		return err
	}
	switch ev.Action {
	case ActionFault:
		amps := float64(physics.DefaultFaultAmps)
		if ev.Current != nil {
			amps = *ev.Current
		}
		var clearAfter time.Duration
		if ev.ClearAfter != nil {
			clearAfter = ev.ClearAfter.D()
		}
		s.w.Fault(t.Node, ph, ev.Permanent != nil && *ev.Permanent, clearAfter, amps, now)
		return nil
	case ActionClearFault:
		s.w.ClearFaults(t.Node)
		return nil
	case ActionSag, ActionSwell:
		s.w.Voltage(t, ph, *ev.Magnitude, now.Add(ev.Duration.D()))
		return nil
	case ActionOpen, ActionClose:
		return s.w.Operate(t.Node, ev.Action == ActionClose, now)
	case ActionSet:
		_, err := s.w.Pin(t.Dev, ev.Point, *ev.Value)
		return err
	case ActionRelease:
		return s.w.Release(t.Dev, ev.Point)
	}
	d := s.Devices[t.Dev]
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
	t, _ := s.w.Lookup(device)
	return s.w.Pin(t.Dev, point, v)
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
	p := s.w.Place(i)
	st := DeviceState{ID: d.ID, Unit: d.Unit, Profile: d.Profile.Name, URL: s.urls[d], Values: d.Values(),
		Feeder: p.Feeder, Node: p.Node, Kind: p.Kind, Energized: p.Energized, Pinned: p.Pinned}
	if f := d.Fault(); !f.IsZero() {
		cs := &CommsState{Silent: f.Silent, Refuse: f.Refuse, HalfOpen: f.HalfOpen, BadCRC: f.BadCRC, Exceptions: f.Exceptions}
		if f.Latency > 0 {
			cs.Latency = f.Latency.String()
		}
		st.Comms = cs
	}
	return st
}

// Feeders returns the state of every feeder's nodes (GET /api/feeders).
func (s *Sim) Feeders() []physics.FeederState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Feeders()
}
