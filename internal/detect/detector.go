// Package detect turns the samples of a shard's devices into events: voltage
// band excursions (ANSI C84.1), RMS variations (sags, swells, interruptions,
// classified by IEEE 1159), breaker and recloser operations, comms loss and
// de-energization.
//
// It exists so that these rules live in one place, run on sample time
// (never the wall clock) and cost nothing per sample in steady state: a
// Detector is owned by one shard goroutine, latches the role values of each
// poll without locks or allocation, and evaluates a device once per poll.
//
// Decisions worth knowing (the tests pin each one down):
//
//   - Only Good samples feed detection; a timeout is missing data, never
//     0 V. An event starts or ends only on evidence: a sag needs one phase
//     read below the threshold to start and every phase read recovered to
//     end; an interruption needs every phase read below its threshold to
//     start and one phase read recovered to end. A poll missing a phase
//     decides only what the phases it has can decide.
//   - A sag that deepens into an interruption stays open around it: the
//     interruption is its own event nested in the sag (IEC 61000-4-30 flags
//     both), and the sag carries FlagInterruption and the interruption's
//     depth as its Worst.
//   - Comms loss is never an outage. While a device is comm_lost nothing
//     arrives to start or end its voltage events: an event in progress
//     stays open until good data decides, and its precision grows to the
//     gap (FlagGap). A pending band excursion (not yet persisted) is
//     dropped when comms are lost. The same holds for any gap between
//     samples: a transition decided by a sample after a gap longer than two
//     intervals carries the gap as its DurationPrecision and FlagGap.
//   - Band events are per phase and per range: outside Range A is a
//     warning event, outside Range B a critical one nested in it, so an
//     alert's severity never changes during its life. A pending excursion
//     needs every reading outside the range for Params.BandPersistence (one
//     reading inside resets it); the hysteresis only delays the end of an
//     event that started. A phase below the interruption threshold has no
//     band events: the interruption is the event.
//   - Every closed→open is a trip, except on a device with a trip_count
//     point whose counter was read in that poll and did not advance: that
//     is a commanded breaker_open. Between two polls the trip counter (or,
//     without one, the shot counter, which counts recloses) says how many
//     operations happened: each is its own trip or reclose instant, the
//     ones no poll saw FlagInferred and spread over the interval (see
//     operations).
//   - A recloser sequence starts at a trip and gathers the trips within
//     Params.RecloseWindow of the first one. It ends with OutcomeLockout
//     when the lockout point goes to 1 (or, without a lockout point, when
//     the breaker stays open Params.LockoutAfter after a trip), or with
//     OutcomeReclosed once the window has passed with the breaker closed;
//     its End is then the last reclose, so the End is emitted up to the
//     window after the fact. A reclosed sequence is IEEE 1366 momentary
//     unless one of its open times reached Params.SustainedAfter; a
//     lockout is sustained, and the lockout event (at the recloser's
//     device) stays open until the lockout point returns to 0, or, for an
//     inferred lockout, until the breaker closes.
//   - comm_lost starts at the first failed poll of the run that reached
//     Params.CommLossPolls (CausePollFailures), or at the last good sample
//     plus Params.CommLossAfter (CauseNoData, found by Tick), and ends at
//     the first good sample. Tick opens a band event whose persistence
//     elapsed between polls only while the last good voltage is younger
//     than Params.CommLossAfter.
//   - Energization follows one rule (energize): a device's own good
//     voltage decides; the topology explains a loss (the cause, revised by
//     later evidence) and infers the state of devices that cannot tell,
//     and never overrules a device that reports voltage. Switching states
//     keep their last good value through a comms loss.
//   - Time never goes backwards: a sample or tick older than one seen is
//     taken at the newer time. Suspend and Resume carry events in progress
//     across a restart.
package detect

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// Internal role codes: bit positions in device.have.
const (
	roleNone uint8 = iota
	roleVA
	roleVB
	roleVC
	roleBreaker
	roleLockout
	roleShot
	roleTrip
	numRoles
)

const (
	voltMask   = 1<<roleVA | 1<<roleVB | 1<<roleVC
	switchMask = 1<<roleBreaker | 1<<roleLockout | 1<<roleShot | 1<<roleTrip
	// maxCounterStep: a trip or shot counter jumping further between two
	// polls is taken as a reset or a bad read, not as operations.
	maxCounterStep = 16
)

func roleCode(r profile.Role) uint8 {
	switch r {
	case profile.RoleVoltageA:
		return roleVA
	case profile.RoleVoltageB:
		return roleVB
	case profile.RoleVoltageC:
		return roleVC
	case profile.RoleBreakerClosed:
		return roleBreaker
	case profile.RoleLockout:
		return roleLockout
	case profile.RoleShotCount:
		return roleShot
	case profile.RoleTripCount:
		return roleTrip
	}
	return roleNone
}

// track holds an event while it is open.
type track struct {
	ev   Event
	open bool
}

// bandTrack is one phase against one C84.1 range.
type bandTrack struct {
	track
	// pending: outside the range since `since`, not yet persisted.
	pending  bool
	since    int64
	worstDev float64
	worst    float64
	prec     time.Duration
	flags    Flags
}

type device struct {
	// Touched by every sample.
	roles    []uint8
	have     uint8
	lat      [numRoles]float64
	latT     [numRoles]int64
	lastGood int64
	failures int

	info     DeviceInfo
	interval int64
	phases   Phases
	hasTrip  bool
	hasShot  bool
	hasLock  bool
	parent   int32 // local index, -1 at the source
	children []int32
	counter  uint32 // last event counter used

	// Comms.
	heard     bool
	firstFail int64
	watchFrom int64
	comm      track

	// Voltage.
	lastVoltT int64
	pu        [3]float64
	puT       [3]int64
	sag       track
	swell     track
	intr      track
	band      [3][2]bandTrack

	// Switching.
	breaker    BreakerState
	lockKnown  bool
	lockout    track
	tripCount  float64
	tripKnown  bool
	shotCount  float64
	shotKnown  bool
	seq        track
	seqFirst   int64
	seqTrip    int64
	seqReclose int64
	seqLongest int64 // the longest open time of the sequence so far
	openedAt   int64 // when the breaker was last seen opening by a trip

	// Energy.
	en   energy
	dead track
	// voltMiss counts the polls in a row that read none of the device's
	// phases: after Params.CommLossPolls its voltage is no evidence.
	voltMiss int
	// lastT is the latest sample time seen: detection never goes back.
	lastT int64
	// swT is the time of the previous breaker reading.
	swT int64
	// dirty: listed in Detector.changed.
	dirty bool
	// ties are the tie switches (local indexes) that can feed this
	// device's input; tieTo the devices this tie switch can feed.
	ties, tieTo []int32
}

// isOpen reports whether the device interrupts the feeder below it.
func (dev *device) isOpen() bool {
	return dev.breaker == BreakerOpen || (dev.breaker == BreakerUnknown && dev.lockout.open)
}

// Stats count what a Detector processed.
type Stats struct {
	Samples uint64
	Polls   uint64
	// Foreign counts samples of devices not in the Detector's set.
	Foreign uint64
	// Late counts samples stamped before one already seen for their device;
	// they are taken at the newer time.
	Late   uint64
	Events uint64
}

// Detector runs the state machines of a set of devices (a shard). It is
// not safe for concurrent use: one goroutine owns it and calls every method.
type Detector struct {
	p      Params
	ranges [2]Range
	emitFn func(*Event)
	out    Event
	// slot maps Device − base to the local index, -1 when not in the set.
	base  uint32
	slot  []int32
	devs  []device
	stats Stats
	// lastTick is the latest time given to Tick.
	lastTick int64
	// changed lists the devices DrainChanged reports next.
	changed []int32
}

// maxSpan bounds the index range a Detector's devices may span, since the
// lookup table costs 4 bytes per index in it.
const maxSpan = 1 << 24

// New builds a Detector for devices. emit receives every event, on the
// goroutine that calls Process or Tick; the *Event is only valid during the
// call.
func New(params Params, devices []DeviceInfo, emit func(*Event)) (*Detector, error) {
	if err := params.Validate(); err != nil {
		return nil, err
	}
	if emit == nil {
		return nil, errors.New("new detector: emit is nil")
	}
	d := &Detector{p: params, ranges: [2]Range{params.RangeA, params.RangeB}, emitFn: emit}
	if len(devices) == 0 {
		return d, nil
	}
	lo, hi := devices[0].Index, devices[0].Index
	for _, di := range devices {
		lo, hi = min(lo, di.Index), max(hi, di.Index)
	}
	if hi-lo >= maxSpan {
		return nil, fmt.Errorf("new detector: device indexes %d..%d span more than %d", lo, hi, maxSpan)
	}
	d.base = lo
	d.slot = make([]int32, hi-lo+1)
	for i := range d.slot {
		d.slot[i] = -1
	}
	d.devs = make([]device, len(devices))
	var errs []error
	for k, di := range devices {
		if d.slot[di.Index-lo] >= 0 {
			errs = append(errs, fmt.Errorf("device %s: index %d given twice", di.ID, di.Index))
			continue
		}
		d.slot[di.Index-lo] = int32(k)
		dev := &d.devs[k]
		dev.info = di
		dev.en.causeDev = -1
		dev.roles = make([]uint8, len(di.PointRoles))
		for i, r := range di.PointRoles {
			c := roleCode(r)
			dev.roles[i] = c
			switch c {
			case roleVA, roleVB, roleVC:
				dev.phases |= 1 << (c - roleVA)
			case roleTrip:
				dev.hasTrip = true
			case roleShot:
				dev.hasShot = true
			case roleLockout:
				dev.hasLock = true
			}
		}
		if di.Interval <= 0 {
			errs = append(errs, fmt.Errorf("device %s: poll interval %v must be > 0", di.ID, di.Interval))
		}
		dev.interval = int64(di.Interval)
		if dev.phases != 0 {
			if !(di.Nominal > 0) || math.IsInf(di.Nominal, 0) || !(di.PTRatio > 0) || math.IsInf(di.PTRatio, 0) {
				errs = append(errs, fmt.Errorf("device %s: nominal voltage %v and pt ratio %v must be > 0 for voltage points",
					di.ID, di.Nominal, di.PTRatio))
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("new detector: %w", errors.Join(errs...))
	}
	for k := range d.devs {
		dev := &d.devs[k]
		dev.parent = d.local(dev.info.Upstream)
	}
	for k := range d.devs {
		// A chain longer than the number of devices loops.
		n := 0
		for u := d.devs[k].parent; u >= 0; u = d.devs[u].parent {
			if n++; n > len(d.devs) || u == int32(k) {
				return nil, fmt.Errorf("new detector: device %s: upstream chain loops", d.devs[k].info.ID)
			}
		}
	}
	for k := range d.devs {
		if p := d.devs[k].parent; p >= 0 {
			d.devs[p].children = append(d.devs[p].children, int32(k))
		}
		for _, t := range d.devs[k].info.Ties {
			if j := d.local(t); j >= 0 {
				d.devs[k].ties = append(d.devs[k].ties, j)
				d.devs[j].tieTo = append(d.devs[j].tieTo, int32(k))
			}
		}
	}
	return d, nil
}

// local returns the local index of the device with model index idx, or -1.
func (d *Detector) local(idx int) int32 {
	if idx < 0 || uint64(idx) < uint64(d.base) || uint64(idx)-uint64(d.base) >= uint64(len(d.slot)) {
		return -1
	}
	return d.slot[uint32(idx)-d.base]
}

// Process takes the next sample of the shard. Samples of one device should
// come in time order; samples of different devices may interleave. A sample
// older than one already seen for its device is taken at the newer time, so
// detection never sees time go backwards. The device is evaluated on the
// sample flagged EndOfPoll. Process does not allocate; events go to emit
// before it returns.
func (d *Detector) Process(s *sample.Sample) {
	i := s.Device - d.base
	if uint64(i) >= uint64(len(d.slot)) || d.slot[i] < 0 {
		d.stats.Foreign++
		return
	}
	k := d.slot[i]
	dev := &d.devs[k]
	d.stats.Samples++
	if s.Time < dev.lastT {
		d.stats.Late++
	}
	t := max(s.Time, dev.lastT)
	dev.lastT = t
	switch {
	case s.Flags&sample.DeviceStatus != 0 || s.Point == sample.NoPoint:
		if s.Quality == sample.Good && s.Value != 0 {
			dev.failures = 0
			dev.lastGood = t
		} else {
			if dev.failures == 0 {
				dev.firstFail = t
			}
			dev.failures++
		}
	case s.Quality == sample.Good && int(s.Point) < len(dev.roles) && s.Value-s.Value == 0:
		// s.Value-s.Value is NaN for NaN and ±Inf.
		dev.lastGood = t
		if r := dev.roles[s.Point]; r != roleNone {
			dev.lat[r] = s.Value
			dev.latT[r] = t
			dev.have |= 1 << r
		}
	}
	if s.Flags&sample.EndOfPoll != 0 {
		d.endPoll(k, dev, t)
	}
}

func (d *Detector) endPoll(k int32, dev *device, t int64) {
	d.stats.Polls++
	if dev.watchFrom == 0 {
		dev.watchFrom = t
	}
	dev.heard = true
	d.evalComm(dev, t)
	wasOpen := dev.isOpen()
	if dev.have&switchMask != 0 {
		d.evalSwitching(dev, t)
	}
	if dev.phases != 0 {
		if dev.have&voltMask != 0 {
			dev.voltMiss = 0
			d.evalVoltage(dev)
		} else {
			dev.voltMiss++
		}
	}
	if !dev.comm.open {
		d.switchTimers(dev, t)
	}
	if dev.isOpen() != wasOpen {
		t = max(t, dev.latT[roleBreaker], dev.latT[roleLockout])
		d.energize(k, t, true)
	} else {
		d.energize(k, t, false)
	}
	dev.have = 0
}

// Tick evaluates the rules that fire when no sample arrives: comms loss by
// time, band persistence, the end of a reclose window and an inferred
// lockout. now is in the samples' time base (Unix ns); the shard worker
// calls it about once a second. A now earlier than a previous one is taken
// as that one.
func (d *Detector) Tick(now int64) {
	now = max(now, d.lastTick)
	d.lastTick = now
	for k := range d.devs {
		dev := &d.devs[k]
		if dev.watchFrom == 0 {
			dev.watchFrom = now
		}
		wasLost := dev.comm.open
		d.evalComm(dev, now)
		if dev.comm.open != wasLost {
			d.energize(int32(k), now, false)
		}
		if dev.comm.open {
			continue
		}
		// The last good voltage is assumed to hold while it is fresh.
		if dev.lastVoltT != 0 && now-dev.lastVoltT <= int64(d.p.CommLossAfter) {
			for p := range dev.band {
				for r := range dev.band[p] {
					if b := &dev.band[p][r]; b.pending && now-b.since >= int64(d.p.BandPersistence) {
						d.bandStart(dev, b, r, Phases(1)<<p)
					}
				}
			}
		}
		wasOpen := dev.isOpen()
		d.switchTimers(dev, now)
		if dev.isOpen() != wasOpen {
			d.energize(int32(k), now, true)
		}
	}
}

// Stats returns the counters so far.
func (d *Detector) Stats() Stats { return d.stats }

func (d *Detector) emit(ev *Event) {
	d.out = *ev
	d.stats.Events++
	d.emitFn(&d.out)
}

func (d *Detector) start(dev *device, tr *track, ev Event) {
	dev.counter++
	ev.ID = uint64(dev.info.Index)<<32 | uint64(dev.counter)
	ev.Device = dev.info.Index
	ev.Stage = StageStart
	tr.ev = ev
	tr.open = true
	d.emit(&tr.ev)
}

// end closes tr at t; prec and fl describe the sample that decided it.
func (d *Detector) end(tr *track, t int64, prec time.Duration, fl Flags) {
	tr.ev.Stage = StageEnd
	tr.ev.End = max(t, tr.ev.Start)
	tr.ev.DurationPrecision = max(tr.ev.DurationPrecision, prec)
	tr.ev.Flags |= fl
	tr.open = false
	d.emit(&tr.ev)
}

func (d *Detector) instant(dev *device, k Kind, t int64, shots int, fl Flags) {
	dev.counter++
	d.emit(&Event{
		ID:                uint64(dev.info.Index)<<32 | uint64(dev.counter),
		Device:            dev.info.Index,
		Kind:              k,
		Stage:             StageInstant,
		Start:             t,
		End:               t,
		DurationPrecision: time.Duration(dev.interval),
		Shots:             shots,
		Flags:             fl,
	})
}

// evalComm decides comm_lost from the failed polls in a row and the age of
// the last good sample at now.
func (d *Detector) evalComm(dev *device, now int64) {
	ref := dev.lastGood
	if ref == 0 {
		ref = dev.watchFrom
	}
	byPolls := dev.failures >= d.p.CommLossPolls
	lost := byPolls || now-ref > int64(d.p.CommLossAfter)
	if lost == dev.comm.open {
		return
	}
	if !lost {
		d.end(&dev.comm, now, 0, 0)
		return
	}
	ev := Event{Kind: KindCommLost, Severity: SeverityWarning, DurationPrecision: time.Duration(dev.interval)}
	if byPolls {
		ev.Start, ev.Cause = dev.firstFail, CausePollFailures
	} else {
		ev.Start, ev.Cause = ref+int64(d.p.CommLossAfter), CauseNoData
	}
	d.start(dev, &dev.comm, ev)
	for p := range dev.band {
		for r := range dev.band[p] {
			dev.band[p][r].pending = false
		}
	}
}

// Snapshot copies the state of every device, in the order given to New.
func (d *Detector) Snapshot() []DeviceState {
	out := make([]DeviceState, len(d.devs))
	for k := range d.devs {
		d.fill(&d.devs[k], &out[k])
	}
	return out
}

// State returns the state of the device with model index idx, and false
// when the Detector does not own it. It does not allocate.
func (d *Detector) State(idx uint32) (DeviceState, bool) {
	var st DeviceState
	k := d.local(int(idx))
	if k < 0 {
		return st, false
	}
	d.fill(&d.devs[k], &st)
	return st, true
}

func (d *Detector) fill(dev *device, st *DeviceState) {
	st.Index, st.ID, st.Feeder = dev.info.Index, dev.info.ID, dev.info.Feeder
	switch {
	case dev.comm.open:
		st.Comm = CommLost
	case dev.heard:
		st.Comm = CommOK
	}
	st.FailedPolls, st.LastGood = dev.failures, dev.lastGood
	st.Voltage, st.VoltageTime, st.Phases = dev.pu, dev.puT, dev.phases
	for p := range dev.band {
		switch {
		case dev.band[p][1].open:
			st.Band[p] = BandOutsideB
		case dev.band[p][0].open:
			st.Band[p] = BandOutsideA
		}
	}
	st.Sag, st.Swell, st.Interruption = dev.sag.open, dev.swell.open, dev.intr.open
	st.Energy = dev.en.state
	if st.Energy == EnergyDeEnergized {
		st.Cause, st.CauseDevice = dev.en.cause, d.index(dev.en.causeDev)
		st.DeadSince = dev.dead.ev.Start
	}
	st.Breaker, st.Lockout = dev.breaker, dev.lockout.open
	st.Open = d.effectivelyOpen(dev)
	if dev.seq.open {
		st.SequenceShots = dev.seq.ev.Shots
	}
}

// DrainChanged calls fn with the model index and latest sample time of
// every device whose energization, cause or switching state changed since
// the last call, once each.
func (d *Detector) DrainChanged(fn func(idx uint32, t int64)) {
	for _, k := range d.changed {
		dev := &d.devs[k]
		dev.dirty = false
		fn(dev.info.Index, max(dev.lastT, d.lastTick))
	}
	d.changed = d.changed[:0]
}

// OpenEvents returns a copy of every event in progress (Stage StageStart,
// Worst and Phases as of now), device by device.
func (d *Detector) OpenEvents() []Event {
	var out []Event
	for k := range d.devs {
		dev := &d.devs[k]
		for _, tr := range dev.tracks() {
			if tr.open {
				out = append(out, tr.ev)
			}
		}
	}
	return out
}
