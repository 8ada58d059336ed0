package detect

import (
	"fmt"
	"strings"
	"time"
)

// Event is one entry of the in-process event stream that detection hands to
// the pipeline (InfluxDB sink, grid layer, alert dispatcher).
//
// An event with a duration is emitted twice with the same ID: once with
// Stage StageStart when detection decides it began, and once with StageEnd
// when it is over. Switching operations (trip, reclose, breaker_open,
// breaker_close) have no duration and are emitted once with StageInstant.
//
// Event is a flat value with no pointers: copy it freely. The *Event given
// to the emit callback is only valid during the call.
//
// Times are sample times (when the device's response arrived), never the
// wall clock. Polling cannot see inside an interval: Start is the time of
// the first sample beyond the threshold and End the time of the first
// sample back within it, so the true edges lie up to one poll interval (or
// one sample gap) earlier. DurationPrecision says how far: the device's poll
// interval, or the longest gap between the samples that decided the start or
// the end (FlagGap is set when such a gap exceeded two intervals).
type Event struct {
	// ID is the same on the Start and End of one event and unique per
	// device within one run: Device<<32 | a per-device counter from 1.
	ID uint64
	// Device indexes config.Model.Devices (sample.Sample.Device).
	Device uint32
	Kind   Kind
	Stage  Stage
	// Start is when the condition began, in Unix nanoseconds. For a band
	// event it is the first sample outside the band, not the moment the
	// persistence time elapsed.
	Start int64
	// End is when it ended (Unix ns): 0 on a StageStart, Start on a
	// StageInstant.
	End int64
	// Worst is the worst voltage seen so far in per-unit: the lowest for a
	// sag and an interruption, the highest for a swell, the farthest outside
	// the band for a band event; 0 for events without a voltage.
	Worst float64
	// WorstVolts is Worst in primary volts (Worst × nominal).
	WorstVolts float64
	// Phases involved (voltage events): a bitmask of PhaseA, PhaseB, PhaseC.
	Phases Phases
	// Category is the IEEE 1159 category of an RMS variation, the C84.1
	// range of a band event, or the IEEE 1366 momentary/sustained class of
	// an interruption seen through switching. Duration-based categories are
	// only known at the end: they are CategoryNone on a StageStart.
	Category Category
	// Severity does not change between Start and End (alerts key on it).
	Severity Severity
	// DurationPrecision bounds the error of Start and End (see above).
	DurationPrecision time.Duration
	// Shots is the number of trip operations of a recloser sequence so far
	// ("operations to lockout"), or of the trips a trip instant stands for.
	Shots int
	// Outcome of a recloser sequence: OutcomeReclosed or OutcomeLockout.
	Outcome Outcome
	// Cause of a de_energized or comm_lost event.
	Cause Cause
	// CauseDevice is the device a de_energized event's cause names when
	// Cause.Upstream() (its index in config.Model.Devices): the most
	// upstream open device (the device itself when it is open and reads
	// no voltage: its PTs are on the load side), or the most upstream
	// device that reads no voltage with nothing above it open.
	CauseDevice uint32
	Flags       Flags
}

// Duration is End − Start for an ended event, 0 otherwise.
func (e *Event) Duration() time.Duration {
	if e.Stage != StageEnd || e.End < e.Start {
		return 0
	}
	return time.Duration(e.End - e.Start)
}

// Kind of event.
type Kind uint8

const (
	KindNone Kind = iota
	// KindSag: RMS voltage below the sag threshold on any phase.
	KindSag
	// KindSwell: RMS voltage above the swell threshold on any phase.
	KindSwell
	// KindInterruption: every phase below the interruption threshold.
	KindInterruption
	// KindBand: one phase outside an ANSI C84.1 range for the persistence
	// time. One event per phase and range: a Range B excursion is nested in
	// the Range A one of the same phase.
	KindBand
	// KindBreakerOpen: the breaker opened with no trip counted (a command).
	KindBreakerOpen
	// KindBreakerClose: the breaker closed outside a reclose sequence.
	KindBreakerClose
	// KindTrip: the breaker opened by protection.
	KindTrip
	// KindReclose: the breaker closed during a reclose sequence.
	KindReclose
	// KindLockout: the recloser locked out (the last shot failed).
	KindLockout
	// KindRecloserSequence: the trips and recloses within the reclose
	// window of the first trip, as one event.
	KindRecloserSequence
	// KindCommLost: the device stopped answering. Never an outage by itself.
	KindCommLost
	// KindDeEnergized: the device reads all phases below the interruption
	// threshold, or, with no voltage of its own to tell, an upstream device
	// is open or de-energized (see energize).
	KindDeEnergized
	// NumKinds is the number of kinds, for arrays indexed by Kind.
	NumKinds
)

var kindNames = [...]string{
	KindNone:             "none",
	KindSag:              "sag",
	KindSwell:            "swell",
	KindInterruption:     "interruption",
	KindBand:             "band",
	KindBreakerOpen:      "breaker_open",
	KindBreakerClose:     "breaker_close",
	KindTrip:             "trip",
	KindReclose:          "reclose",
	KindLockout:          "lockout",
	KindRecloserSequence: "recloser_sequence",
	KindCommLost:         "comm_lost",
	KindDeEnergized:      "de_energized",
}

// String returns the name used in InfluxDB, alerts and the API.
func (k Kind) String() string { return name(kindNames[:], k) }

// MarshalText makes JSON use the name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Stage of an event's life.
type Stage uint8

const (
	StageStart Stage = iota
	StageEnd
	StageInstant
)

var stageNames = [...]string{"start", "end", "instant"}

func (s Stage) String() string               { return name(stageNames[:], s) }
func (s Stage) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Category classifies an event by a standard's table.
type Category uint8

const (
	CategoryNone Category = iota
	// IEEE 1159 RMS variations. Instantaneous is shorter than 30 cycles
	// (Params.InstantaneousMax), momentary up to 3 s, temporary up to 1 min.
	CategoryInstantaneousSag
	CategoryMomentarySag
	CategoryTemporarySag
	// CategoryUndervoltage: a sag longer than 1 min no deeper than 0.8 pu.
	CategoryUndervoltage
	// CategoryLongDurationSag: a sag longer than 1 min deeper than 0.8 pu,
	// which IEEE 1159 does not name.
	CategoryLongDurationSag
	CategoryInstantaneousSwell
	CategoryMomentarySwell
	CategoryTemporarySwell
	// CategoryOvervoltage: a swell longer than 1 min no higher than 1.2 pu.
	CategoryOvervoltage
	// CategoryLongDurationSwell: a swell longer than 1 min above 1.2 pu.
	CategoryLongDurationSwell
	CategoryMomentaryInterruption
	CategoryTemporaryInterruption
	// CategorySustainedInterruption: IEEE 1159, longer than 1 min.
	CategorySustainedInterruption
	// ANSI C84.1 ranges of a band event.
	CategoryRangeA
	CategoryRangeB
	// IEEE 1366 classes (boundary Params.SustainedAfter, default 5 min) of
	// de_energized, lockout and recloser_sequence events.
	CategoryMomentary
	CategorySustained
)

var categoryNames = [...]string{
	CategoryNone:                  "",
	CategoryInstantaneousSag:      "instantaneous_sag",
	CategoryMomentarySag:          "momentary_sag",
	CategoryTemporarySag:          "temporary_sag",
	CategoryUndervoltage:          "undervoltage",
	CategoryLongDurationSag:       "long_duration_sag",
	CategoryInstantaneousSwell:    "instantaneous_swell",
	CategoryMomentarySwell:        "momentary_swell",
	CategoryTemporarySwell:        "temporary_swell",
	CategoryOvervoltage:           "overvoltage",
	CategoryLongDurationSwell:     "long_duration_swell",
	CategoryMomentaryInterruption: "momentary_interruption",
	CategoryTemporaryInterruption: "temporary_interruption",
	CategorySustainedInterruption: "sustained_interruption",
	CategoryRangeA:                "range_a",
	CategoryRangeB:                "range_b",
	CategoryMomentary:             "momentary",
	CategorySustained:             "sustained",
}

func (c Category) String() string               { return name(categoryNames[:], c) }
func (c Category) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Severity of an event for alerting.
type Severity uint8

const (
	SeverityInfo Severity = iota
	SeverityWarning
	SeverityCritical
)

var severityNames = [...]string{"info", "warning", "critical"}

func (s Severity) String() string               { return name(severityNames[:], s) }
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Outcome of a recloser sequence.
type Outcome uint8

const (
	OutcomeNone Outcome = iota
	// OutcomeReclosed: the breaker stayed closed after its last reclose.
	OutcomeReclosed
	// OutcomeLockout: the last shot failed.
	OutcomeLockout
)

var outcomeNames = [...]string{"", "reclosed", "lockout"}

func (o Outcome) String() string               { return name(outcomeNames[:], o) }
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Cause of a de_energized or comm_lost event.
type Cause uint8

const (
	CauseNone Cause = iota
	// CauseNoVoltage: all phases of the device below the interruption threshold.
	CauseNoVoltage
	// CauseUpstreamOpen: a protective device upstream is open or locked out.
	CauseUpstreamOpen
	// CauseUpstreamDeEnergized: a device upstream reads no voltage, and
	// nothing above it explains why.
	CauseUpstreamDeEnergized
	// CausePollFailures: Params.CommLossPolls consecutive polls failed.
	CausePollFailures
	// CauseNoData: no good sample for Params.CommLossAfter.
	CauseNoData
)

var causeNames = [...]string{"", "no_voltage", "upstream_open", "upstream_de_energized", "poll_failures", "no_data"}

// Upstream reports whether the cause points at another device
// (Event.CauseDevice).
func (c Cause) Upstream() bool { return c == CauseUpstreamOpen || c == CauseUpstreamDeEnergized }

func (c Cause) String() string               { return name(causeNames[:], c) }
func (c Cause) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Phases is a set of phases.
type Phases uint8

const (
	PhaseA Phases = 1 << iota
	PhaseB
	PhaseC
)

var phasesNames = [...]string{"", "A", "B", "AB", "C", "AC", "BC", "ABC"}

// String is "A", "BC", "ABC", ... ("" for none).
func (p Phases) String() string               { return name(phasesNames[:], p) }
func (p Phases) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Flags qualify an event.
type Flags uint8

const (
	// FlagGap: a sample gap longer than two poll intervals preceded the
	// sample that decided the start or the end (including a comms loss the
	// event lived through); DurationPrecision holds the gap.
	FlagGap Flags = 1 << iota
	// FlagInitial: the condition was already present at the first sample of
	// the device; Start is when detection first saw it.
	FlagInitial
	// FlagInferred: the operation was not seen but deduced: from the trip or
	// shot counter between two polls, or a lockout from the breaker staying
	// open for Params.LockoutAfter on a device without a lockout point; or
	// a de_energized state deduced from the topology for a device whose own
	// voltage is not known (no voltage points, comm_lost).
	FlagInferred
	// FlagInterruption: this sag contained an interruption (which is its
	// own event); dip statistics usually leave such sags out.
	FlagInterruption
	// FlagReconfigured: the event was ended by a configuration reload that
	// removed its device or changed what detection knows of it
	// (Detector.Retire), not by evidence; End is the reload's time.
	FlagReconfigured
)

var flagNames = [...]string{"gap", "initial", "inferred", "interruption", "reconfigured"}

// MarshalText writes String.
func (f Flags) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// String lists the flags separated by "|"; it allocates, so keep it off
// the hot path.
func (f Flags) String() string {
	s := ""
	for i, n := range flagNames {
		if f&(1<<i) != 0 {
			if s != "" {
				s += "|"
			}
			s += n
		}
	}
	return s
}

func name[T ~uint8](names []string, v T) string {
	if int(v) < len(names) {
		return names[v]
	}
	return "unknown"
}

func unname[T ~uint8](names []string, what string, text []byte) (T, error) {
	for i, n := range names {
		if n == string(text) {
			return T(i), nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q", what, text)
}

// UnmarshalText parses the names MarshalText writes, so that saved events
// read back.
func (k *Kind) UnmarshalText(b []byte) (err error) {
	*k, err = unname[Kind](kindNames[:], "event kind", b)
	return err
}

func (s *Stage) UnmarshalText(b []byte) (err error) {
	*s, err = unname[Stage](stageNames[:], "event stage", b)
	return err
}

func (c *Category) UnmarshalText(b []byte) (err error) {
	*c, err = unname[Category](categoryNames[:], "event category", b)
	return err
}

func (s *Severity) UnmarshalText(b []byte) (err error) {
	*s, err = unname[Severity](severityNames[:], "severity", b)
	return err
}

func (o *Outcome) UnmarshalText(b []byte) (err error) {
	*o, err = unname[Outcome](outcomeNames[:], "outcome", b)
	return err
}

func (c *Cause) UnmarshalText(b []byte) (err error) {
	*c, err = unname[Cause](causeNames[:], "cause", b)
	return err
}

func (p *Phases) UnmarshalText(b []byte) (err error) {
	*p, err = unname[Phases](phasesNames[:], "phases", b)
	return err
}

// UnmarshalText parses "a|b" as String writes it.
func (f *Flags) UnmarshalText(b []byte) error {
	*f = 0
	if len(b) == 0 {
		return nil
	}
	for _, n := range strings.Split(string(b), "|") {
		v, err := unname[uint8](flagNames[:], "flag", []byte(n))
		if err != nil {
			return err
		}
		*f |= 1 << v
	}
	return nil
}

// Instant reports whether events of kind k have no duration (StageInstant).
func (k Kind) Instant() bool {
	switch k {
	case KindBreakerOpen, KindBreakerClose, KindTrip, KindReclose:
		return true
	}
	return false
}
