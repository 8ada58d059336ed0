package grid

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/topology"
)

// Status of an outage (DOMAIN.md: predicted → confirmed → restored).
type Status string

const (
	// StatusPredicted: devices are dark and the outage is placed at the most
	// upstream of them, but no protective device reports open.
	StatusPredicted Status = "predicted"
	// StatusConfirmed: the outage's device reports open or locked out.
	StatusConfirmed Status = "confirmed"
	// StatusRestored: every customer and device of the outage is back.
	StatusRestored Status = "restored"
	// StatusMerged: a predicted outage that later evidence placed under
	// another (its devices' cause now names a device upstream): it ended
	// without a restoration, its customers went on in the other outage.
	StatusMerged Status = "merged"
)

// Step is one partial (or the final) restoration of an outage.
type Step struct {
	// Time is when the restoration was seen (sample time, Unix ns).
	Time int64 `json:"time_ns"`
	// Customers restored at this step.
	Customers int `json:"customers"`
	// Sustained: out for Params.SustainedAfter or longer (IEEE 1366).
	Sustained bool `json:"sustained"`
}

// Outage is one interruption of supply, placed at one device of a feeder.
// Times are sample times (Unix ns).
type Outage struct {
	// ID is stable for the outage's life and across restarts:
	// <feeder>/<device>/<start in Unix ms>.
	ID     string `json:"id"`
	Feeder string `json:"feeder"`
	// Device is where the outage sits: the open protective device above
	// the dark part, or the most upstream dark device.
	Device string `json:"device"`
	Status Status `json:"status"`
	Start  int64  `json:"start_ns"`
	// End is the restoration time, 0 while active.
	End int64 `json:"end_ns,omitempty"`
	// CustomersAffected is every customer the outage has held;
	// CustomersOut of them are out now, the rest restored.
	CustomersAffected int `json:"customers_affected"`
	CustomersOut      int `json:"customers_out"`
	// Critical lists the critical customers out now.
	Critical []topology.CriticalCustomer `json:"critical,omitempty"`
	// Sections and Devices out now (IDs); CommLost are the devices among
	// them that do not answer (counted inside the outage, never as outages
	// of their own).
	Sections []string `json:"sections,omitempty"`
	Devices  []string `json:"devices,omitempty"`
	CommLost []string `json:"comm_lost,omitempty"`
	Steps    []Step   `json:"steps,omitempty"`
	// Sustained is true once any customer of it has been out for
	// Params.SustainedAfter (IEEE 1366); a restored outage that never was
	// is momentary.
	Sustained bool `json:"sustained"`
}

// CustomersRestored is the number of customers of the outage who are back.
func (o *Outage) CustomersRestored() int { return o.CustomersAffected - o.CustomersOut }

// ChangeKind says what happened to an outage.
type ChangeKind uint8

const (
	OutageStarted ChangeKind = iota
	OutageUpdated
	OutageRestored
	// IndicesUpdated: only the feeder's reliability sums changed (a reclose
	// sequence counted as momentary interruptions); Outage is empty.
	IndicesUpdated
	// OutageMerged: the outage went into another one (StatusMerged).
	OutageMerged
)

var changeNames = [...]string{"started", "updated", "restored", "indices_updated", "merged"}

func (k ChangeKind) String() string { return changeNames[k] }

// Change is an outage as it is after a change; Outage is a copy.
type Change struct {
	Kind   ChangeKind
	Outage Outage
	// Feeder, and its reliability sums after the change, at Time.
	Feeder  string
	Indices Accumulator
	Time    int64
}

// Params of outage logic.
type Params struct {
	// SustainedAfter is the IEEE 1366 momentary/sustained boundary.
	SustainedAfter time.Duration
}

// State is what an Engine keeps of one feeder across restarts.
type State struct {
	Feeder  string      `json:"feeder"`
	Active  []Outage    `json:"active,omitempty"`
	Indices Accumulator `json:"indices"`
}

// Store keeps each feeder's State durably. Save is called on the engine's
// goroutine after every change, before the change is handed on.
type Store interface {
	Load(feeder string) (State, bool, error)
	Save(st State) error
}

// Engine places outages on the feeders of one shard, counts the customers
// they hold and keeps the IEEE 1366 accumulators. Like a detect.Detector it
// is owned by one goroutine: Update and Observe are called by the shard
// worker that owns the feeders' devices.
type Engine struct {
	p       Params
	feeders []*feederEngine
	// byDevice maps a model device index to its feeder engine.
	byDevice map[uint32]*feederEngine
	store    Store
	emit     func(*Change)
	dirty    []*feederEngine
}

type feederEngine struct {
	id string
	// devs are the feeder's devices (model indices); parent[k] indexes devs.
	devs   []uint32
	ids    []string
	parent []int
	local  map[uint32]int
	// sections and the local index of the device feeding each.
	sections []*topology.Section
	fedBy    []int
	// below[k] is the customers of the sections at and below device k.
	below []int
	nt    int

	active []*Outage
	// secIn[s] and devIn[k] are the active outage holding section s or
	// device k, nil if none.
	secIn []*Outage
	devIn []*Outage
	acc   Accumulator
	// lastEnd[k] is when the last outage placed at device k ended, so a
	// reclose sequence it covered is not counted again.
	lastEnd []int64

	// dirty: marked for the next Flush, at dirtyT.
	dirty  bool
	dirtyT int64

	// scratch, reused by update
	dead, open, lost, unheard []bool
	key                       []int
}

// NewEngine builds the outage logic of the given feeders of top (IDs of the
// feeders this shard owns); a node's Spec is its device's model index.
// Store may be nil (nothing kept). emit receives every change on the
// caller's goroutine; the *Change is only valid during the call.
func NewEngine(top *topology.Topology, feeders []string, p Params, store Store, emit func(*Change)) (*Engine, error) {
	if p.SustainedAfter <= 0 {
		return nil, fmt.Errorf("new outage engine: sustained boundary %v is not positive", p.SustainedAfter)
	}
	if emit == nil {
		emit = func(*Change) {}
	}
	e := &Engine{p: p, byDevice: map[uint32]*feederEngine{}, store: store, emit: emit}
	for _, id := range feeders {
		tf := top.Feeder(id)
		if tf == nil {
			return nil, fmt.Errorf("new outage engine: feeder %s is not in the topology", id)
		}
		fe := &feederEngine{id: id, local: map[uint32]int{}}
		for k, n := range tf.Nodes {
			fe.local[uint32(n.Spec)] = k
			fe.devs = append(fe.devs, uint32(n.Spec))
			fe.ids = append(fe.ids, n.ID)
			fe.parent = append(fe.parent, n.Parent)
		}
		for s := range tf.Sections {
			fe.sections = append(fe.sections, &tf.Sections[s])
			fe.fedBy = append(fe.fedBy, tf.Sections[s].FedBy)
		}
		fe.nt = tf.Customers()
		fe.below = make([]int, len(fe.devs))
		for s, k := range fe.fedBy {
			for j := k; j >= 0; j = fe.parent[j] {
				fe.below[j] += fe.sections[s].Customers
			}
		}
		n := len(fe.devs)
		fe.secIn = make([]*Outage, len(fe.sections))
		fe.devIn = make([]*Outage, n)
		fe.lastEnd = make([]int64, n)
		fe.dead, fe.open, fe.lost, fe.unheard, fe.key = make([]bool, n), make([]bool, n), make([]bool, n), make([]bool, n), make([]int, n)
		fe.acc.NT = fe.nt
		e.feeders = append(e.feeders, fe)
		for _, idx := range fe.devs {
			e.byDevice[idx] = fe
		}
		if store != nil {
			st, ok, err := store.Load(id)
			if err != nil {
				return nil, fmt.Errorf("new outage engine: feeder %s: %w", id, err)
			}
			if ok {
				fe.restore(st)
			}
		}
	}
	return e, nil
}

// restore takes back the outages and accumulators saved for the feeder.
func (fe *feederEngine) restore(st State) {
	fe.acc = st.Indices
	fe.acc.NT = fe.nt
	for i := range st.Active {
		o := st.Active[i]
		fe.active = append(fe.active, &o)
		for _, sid := range o.Sections {
			for s, sec := range fe.sections {
				if sec.ID == sid {
					fe.secIn[s] = &o
				}
			}
		}
		for _, did := range o.Devices {
			if k := slices.Index(fe.ids, did); k >= 0 {
				fe.devIn[k] = &o
			}
		}
	}
}

// Feeders reports whether the engine owns the device with model index idx.
func (e *Engine) Owns(idx uint32) bool { return e.byDevice[idx] != nil }

// Mark notes that detection changed the energization, cause or switching
// state of device idx at t; Flush then re-decides its feeder once, however
// many of its devices changed.
func (e *Engine) Mark(idx uint32, t int64) {
	fe := e.byDevice[idx]
	if fe == nil {
		return
	}
	if !fe.dirty {
		fe.dirty = true
		e.dirty = append(e.dirty, fe)
	}
	fe.dirtyT = max(fe.dirtyT, t)
}

// Flush re-decides the outages of every marked feeder from the detection
// state of its devices (state returns a device's by model index), at the
// latest time marked for it.
func (e *Engine) Flush(state func(uint32) detect.DeviceState) error {
	var errs []error
	for _, fe := range e.dirty {
		fe.dirty = false
		changes := fe.update(fe.dirtyT, e.p, state)
		if err := e.publish(fe, changes, fe.dirtyT); err != nil {
			errs = append(errs, err)
		}
	}
	e.dirty = e.dirty[:0]
	return errors.Join(errs...)
}

func (e *Engine) publish(fe *feederEngine, changes []Change, t int64) error {
	if len(changes) == 0 {
		return nil
	}
	for i := range changes {
		changes[i].Feeder, changes[i].Indices, changes[i].Time = fe.id, fe.acc, t
	}
	var err error
	if e.store != nil {
		err = e.store.Save(fe.state())
	}
	for i := range changes {
		e.emit(&changes[i])
	}
	return err
}

func (fe *feederEngine) state() State {
	st := State{Feeder: fe.id, Indices: fe.acc}
	for _, o := range fe.active {
		st.Active = append(st.Active, *o)
	}
	return st
}

// update is the outage logic of one feeder (DOMAIN.md, localisation).
func (fe *feederEngine) update(t int64, p Params, state func(uint32) detect.DeviceState) []Change {
	n := len(fe.devs)
	for k, idx := range fe.devs {
		st := state(idx)
		fe.dead[k] = st.Energy == detect.EnergyDeEnergized
		fe.open[k] = st.Open
		fe.lost[k] = st.Comm == detect.CommLost
		fe.key[k] = k
		// Not heard from since this process started (after a restart,
		// before its first poll): no evidence, so the device and the
		// sections it feeds keep their place in the outages carried over.
		fe.unheard[k] = st.Comm == detect.CommUnknown
		if fe.unheard[k] {
			fe.dead[k], fe.open[k] = fe.devIn[k] != nil, false
			continue
		}
		if fe.dead[k] && st.Cause.Upstream() {
			if j, ok := fe.local[st.CauseDevice]; ok {
				fe.key[k] = j
			}
		}
	}
	// Roll up: a dark device's outage is that of the device its cause
	// names, as far up as the chain of dark devices goes.
	for k := range n {
		j := fe.key[k]
		for steps := 0; steps < n && fe.dead[j] && fe.key[j] != j; steps++ {
			j = fe.key[j]
		}
		fe.key[k] = j
	}

	touched := map[*Outage]bool{}
	var started, merged []*Outage
	join := func(key int) *Outage {
		for _, o := range fe.active {
			if o.Device == fe.ids[key] {
				return o
			}
		}
		o := &Outage{Feeder: fe.id, Device: fe.ids[key], Start: t, Status: StatusPredicted}
		fe.active = append(fe.active, o)
		started = append(started, o)
		return o
	}
	// A predicted outage whose device is now explained from upstream (the
	// meter read 0 V before the recloser's trip was seen) goes into the
	// outage of that upstream device: poll order must not split an outage.
	for _, o := range slices.Clone(fe.active) {
		k := slices.Index(fe.ids, o.Device)
		if o.Status != StatusPredicted || k < 0 || !fe.dead[k] || fe.key[k] == k {
			continue
		}
		target := join(fe.key[k])
		if target == o {
			continue
		}
		for s, in := range fe.secIn {
			if in == o {
				fe.secIn[s] = target
			}
		}
		for d, in := range fe.devIn {
			if in == o {
				fe.devIn[d] = target
			}
		}
		target.Start = min(target.Start, o.Start)
		target.CustomersAffected += o.CustomersAffected
		target.Steps = append(target.Steps, o.Steps...)
		touched[target] = true
		o.Status, o.End = StatusMerged, t
		fe.active = slices.DeleteFunc(fe.active, func(a *Outage) bool { return a == o })
		merged = append(merged, o)
	}
	// Devices: a dark device joins the outage of its key, unless it is in
	// an active outage already (an outage keeps what it holds until it is
	// restored: no customer is in two outages).
	for k := range n {
		switch {
		case fe.dead[k] && fe.devIn[k] == nil:
			o := join(fe.key[k])
			fe.devIn[k] = o
			touched[o] = true
		case !fe.dead[k] && fe.devIn[k] != nil:
			touched[fe.devIn[k]] = true
			fe.devIn[k] = nil
		}
	}
	// Sections: out while the device feeding them is dark or open.
	restored := map[*Outage]int{}
	for s, k := range fe.fedBy {
		out := fe.dead[k] || fe.open[k]
		if fe.unheard[k] {
			out = fe.secIn[s] != nil
		}
		switch {
		case out && fe.secIn[s] == nil:
			key := k
			if fe.dead[k] {
				key = fe.key[k]
			}
			o := join(key)
			fe.secIn[s] = o
			o.CustomersAffected += fe.sections[s].Customers
			touched[o] = true
		case !out && fe.secIn[s] != nil:
			o := fe.secIn[s]
			restored[o] += fe.sections[s].Customers
			touched[o] = true
			fe.secIn[s] = nil
		}
	}

	var changes []Change
	for _, o := range merged {
		o.Sections, o.Devices, o.CommLost, o.Critical, o.CustomersOut = nil, nil, nil, nil, 0
		changes = append(changes, Change{Kind: OutageMerged, Outage: fe.copyOf(o)})
	}
	for _, o := range slices.Clone(fe.active) {
		if !touched[o] && !slices.Contains(started, o) {
			// Still check the sustained boundary and status below.
			touched[o] = fe.refreshStatus(o) || fe.crossSustained(o, t, p)
			if touched[o] {
				changes = append(changes, Change{Kind: OutageUpdated, Outage: fe.copyOf(o)})
			}
			continue
		}
		fe.collect(o)
		fe.refreshStatus(o)
		fe.crossSustained(o, t, p)
		if n := restored[o]; n > 0 {
			fe.step(o, t, n, p)
		}
		isNew := slices.Contains(started, o)
		if o.CustomersOut == 0 && len(o.Devices) == 0 {
			fe.restoreAll(o, t, p)
			if isNew {
				// Dark and back in one update: nothing to report.
				continue
			}
			changes = append(changes, Change{Kind: OutageRestored, Outage: fe.copyOf(o)})
			continue
		}
		kind := OutageUpdated
		if isNew {
			kind = OutageStarted
			o.ID = fe.id + "/" + o.Device + "/" + strconv.FormatInt(o.Start/1e6, 10)
		}
		changes = append(changes, Change{Kind: kind, Outage: fe.copyOf(o)})
	}
	return changes
}

// collect recomputes what the outage holds now.
func (fe *feederEngine) collect(o *Outage) {
	o.Sections, o.Devices, o.CommLost, o.Critical = o.Sections[:0], o.Devices[:0], o.CommLost[:0], o.Critical[:0]
	o.CustomersOut = 0
	for s, in := range fe.secIn {
		if in == o {
			sec := fe.sections[s]
			o.Sections = append(o.Sections, sec.ID)
			o.CustomersOut += sec.Customers
			o.Critical = append(o.Critical, sec.Critical...)
		}
	}
	for k, in := range fe.devIn {
		if in == o {
			o.Devices = append(o.Devices, fe.ids[k])
			if fe.lost[k] {
				o.CommLost = append(o.CommLost, fe.ids[k])
			}
		}
	}
}

// refreshStatus confirms an outage whose device reports open or lockout.
func (fe *feederEngine) refreshStatus(o *Outage) bool {
	k := slices.Index(fe.ids, o.Device)
	if o.Status == StatusPredicted && k >= 0 && fe.open[k] {
		o.Status = StatusConfirmed
		return true
	}
	return false
}

// crossSustained marks the outage sustained once it has lasted
// SustainedAfter with customers or devices still out.
func (fe *feederEngine) crossSustained(o *Outage, t int64, p Params) bool {
	if o.Sustained || t-o.Start < int64(p.SustainedAfter) {
		return false
	}
	o.Sustained = true
	return true
}

// step records n customers of o restored at t and counts them into the
// IEEE 1366 accumulators.
func (fe *feederEngine) step(o *Outage, t int64, n int, p Params) {
	sustained := t-o.Start >= int64(p.SustainedAfter)
	o.Steps = append(o.Steps, Step{Time: t, Customers: n, Sustained: sustained})
	fe.acc.roll(t)
	if sustained {
		fe.acc.CI += n
		fe.acc.CMI += float64(n) * time.Duration(t-o.Start).Minutes()
	} else {
		fe.acc.MCI += n
	}
}

// restoreAll ends the outage at t.
func (fe *feederEngine) restoreAll(o *Outage, t int64, p Params) {
	o.Status, o.End = StatusRestored, t
	o.Sustained = t-o.Start >= int64(p.SustainedAfter)
	momentary := 0
	for _, s := range o.Steps {
		if !s.Sustained {
			momentary += s.Customers
		}
	}
	if momentary > 0 {
		fe.acc.roll(t)
		fe.acc.MCIe += momentary
	}
	if k := slices.Index(fe.ids, o.Device); k >= 0 {
		fe.lastEnd[k] = t
	}
	fe.active = slices.DeleteFunc(fe.active, func(a *Outage) bool { return a == o })
}

func (fe *feederEngine) copyOf(o *Outage) Outage {
	c := *o
	c.Sections = slices.Clone(o.Sections)
	c.Devices = slices.Clone(o.Devices)
	c.CommLost = slices.Clone(o.CommLost)
	c.Critical = slices.Clone(o.Critical)
	c.Steps = slices.Clone(o.Steps)
	return c
}

// Observe counts a reclose sequence that ended reclosed as momentary
// interruptions of the customers below the recloser (IEEE 1366 MAIFI: one
// per trip; MAIFIe: one event), unless an outage placed at that device
// already counted them.
func (e *Engine) Observe(ev *detect.Event) error {
	if ev.Kind != detect.KindRecloserSequence || ev.Stage != detect.StageEnd || ev.Outcome != detect.OutcomeReclosed ||
		ev.Category != detect.CategoryMomentary {
		return nil
	}
	fe := e.byDevice[ev.Device]
	if fe == nil {
		return nil
	}
	k := fe.local[ev.Device]
	if fe.lastEnd[k] >= ev.Start || fe.below[k] == 0 {
		return nil
	}
	for _, o := range fe.active {
		if o.Device == fe.ids[k] {
			return nil
		}
	}
	fe.acc.roll(ev.End)
	fe.acc.MCI += max(ev.Shots, 1) * fe.below[k]
	fe.acc.MCIe += fe.below[k]
	return e.publish(fe, []Change{{Kind: IndicesUpdated}}, ev.End)
}

// Active returns a copy of every active outage, feeder by feeder.
func (e *Engine) Active() []Outage {
	var out []Outage
	for _, fe := range e.feeders {
		for _, o := range fe.active {
			out = append(out, fe.copyOf(o))
		}
	}
	return out
}

// Indices returns the reliability accumulators of every feeder.
func (e *Engine) Indices() map[string]Accumulator {
	out := make(map[string]Accumulator, len(e.feeders))
	for _, fe := range e.feeders {
		out[fe.id] = fe.acc
	}
	return out
}

// Tick re-checks the outages of every feeder at t for what changes with
// time alone: the IEEE 1366 sustained boundary.
func (e *Engine) Tick(t int64) error {
	var errs []error
	for _, fe := range e.feeders {
		var changes []Change
		for _, o := range fe.active {
			if fe.crossSustained(o, t, e.p) {
				changes = append(changes, Change{Kind: OutageUpdated, Outage: fe.copyOf(o)})
			}
		}
		if err := e.publish(fe, changes, t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
