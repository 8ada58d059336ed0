package detect

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Range is a voltage range in per-unit, both ends inside the range.
type Range struct {
	Low, High float64
}

// Params are the thresholds of detection. Voltages are in per-unit of the
// device's nominal voltage. DefaultParams holds the values of DOMAIN.md;
// config may override any of them.
type Params struct {
	// RangeA and RangeB are the ANSI C84.1 service voltage ranges.
	RangeA, RangeB Range
	// BandPersistence is how long a phase must stay outside a range before a
	// band event starts (C84.1 judges sustained voltage): 1 s..10 min.
	BandPersistence time.Duration
	// BandHysteresis: a band event (or a pending excursion) ends only when
	// the voltage is back inside the range by this much.
	BandHysteresis float64

	// SagThreshold, SwellThreshold and InterruptionThreshold start RMS
	// variation events (IEC 61000-4-30); Hysteresis ends them: a sag ends
	// at SagThreshold+Hysteresis, a swell at SwellThreshold−Hysteresis, an
	// interruption at InterruptionThreshold+Hysteresis.
	SagThreshold          float64
	SwellThreshold        float64
	InterruptionThreshold float64
	Hysteresis            float64
	// UndervoltageMin and OvervoltageMax bound the IEEE 1159 long duration
	// undervoltage (0.8–0.9 pu) and overvoltage (1.1–1.2 pu) categories.
	UndervoltageMin float64
	OvervoltageMax  float64

	// IEEE 1159 duration boundaries: instantaneous below InstantaneousMax
	// (30 cycles: 0.5 s at 60 Hz, 0.6 s at 50 Hz), momentary up to and
	// including MomentaryMax (3 s), temporary up to TemporaryMax (1 min),
	// long duration beyond.
	InstantaneousMax time.Duration
	MomentaryMax     time.Duration
	TemporaryMax     time.Duration

	// RecloseWindow: trips and recloses within this time of a sequence's
	// first trip belong to one recloser_sequence event (default 5 min).
	RecloseWindow time.Duration
	// LockoutAfter: on a device without a lockout point, a breaker that
	// stays open this long after a trip of a sequence is taken as locked
	// out (FlagInferred).
	LockoutAfter time.Duration

	// CommLossPolls consecutive failed polls, or no good sample for
	// CommLossAfter, make a device comm_lost.
	CommLossPolls int
	CommLossAfter time.Duration

	// SustainedAfter is the IEEE 1366 momentary/sustained boundary of
	// de_energized, lockout and recloser_sequence events (default 5 min;
	// some regulators use 1 min).
	SustainedAfter time.Duration
}

// DefaultParams returns the DOMAIN.md defaults.
func DefaultParams() Params {
	return Params{
		RangeA:                Range{0.95, 1.05},
		RangeB:                Range{0.9167, 1.0583},
		BandPersistence:       60 * time.Second,
		BandHysteresis:        0.005,
		SagThreshold:          0.9,
		SwellThreshold:        1.1,
		InterruptionThreshold: 0.1,
		Hysteresis:            0.02,
		UndervoltageMin:       0.8,
		OvervoltageMax:        1.2,
		InstantaneousMax:      500 * time.Millisecond,
		MomentaryMax:          3 * time.Second,
		TemporaryMax:          time.Minute,
		RecloseWindow:         5 * time.Minute,
		LockoutAfter:          time.Minute,
		CommLossPolls:         3,
		CommLossAfter:         10 * time.Second,
		SustainedAfter:        5 * time.Minute,
	}
}

// FieldError is one rule of Params that a value breaks. Parameters are named
// as feederd's configuration file names them: sag_threshold for
// SagThreshold, range_a for RangeA, range_a.low for RangeA.Low. Field is the
// parameter the rule is about; Also are the other parameters its message
// quotes, so that a loader can report the rule on one that its file sets.
type FieldError struct {
	Field string
	Also  []string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// Fields returns Field, then Also.
func (e *FieldError) Fields() []string { return append([]string{e.Field}, e.Also...) }

// quotes reports whether the rule quotes the parameter name, or a part of
// it (range_a.low for range_a) or a whole it is part of (range_a for
// range_a.low).
func (e *FieldError) quotes(name string) bool {
	for _, f := range e.Fields() {
		if f == name || strings.HasPrefix(name, f+".") || strings.HasPrefix(f, name+".") {
			return true
		}
	}
	return false
}

// Errors is every rule that Params break, in the order Validate checks them.
type Errors []*FieldError

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Validate reports every broken rule, each as a *FieldError, all of them
// in an Errors (find it with errors.As). A value that is not a finite
// number is reported once, and no rule quoting it is.
func (p Params) Validate() error {
	var errs, rules Errors
	bad := func(errs *Errors, field string, also []string, format string, args ...any) {
		*errs = append(*errs, &FieldError{Field: field, Also: also, Err: fmt.Errorf(format, args...)})
	}
	var infinite []string
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"range_a.low", p.RangeA.Low}, {"range_a.high", p.RangeA.High},
		{"range_b.low", p.RangeB.Low}, {"range_b.high", p.RangeB.High},
		{"band_hysteresis", p.BandHysteresis}, {"sag_threshold", p.SagThreshold},
		{"swell_threshold", p.SwellThreshold}, {"interruption_threshold", p.InterruptionThreshold},
		{"hysteresis", p.Hysteresis}, {"undervoltage_min", p.UndervoltageMin},
		{"overvoltage_max", p.OvervoltageMax},
	} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			bad(&errs, f.name, nil, "must be a finite number, got %v", f.v)
			infinite = append(infinite, f.name)
		}
	}
	rule := func(field string, also []string, format string, args ...any) {
		bad(&rules, field, also, format, args...)
	}
	of := func(names ...string) []string { return names }

	// Range A holds 1 pu, range B holds range A (ANSI C84.1).
	a, b := p.RangeA, p.RangeB
	aOK := false
	switch {
	case a.Low >= a.High:
		rule("range_a", nil, "low %g is not below high %g", a.Low, a.High)
	case a.Low >= 1:
		rule("range_a.low", nil, "%g must be below 1 pu", a.Low)
	case a.High <= 1:
		rule("range_a.high", nil, "%g must be above 1 pu", a.High)
	default:
		aOK = true
	}
	bOK := false
	switch {
	case b.Low <= 0:
		rule("range_b.low", nil, "must be > 0, got %g", b.Low)
	case b.Low >= b.High:
		rule("range_b", nil, "low %g is not below high %g", b.Low, b.High)
	default:
		bOK = true
	}
	if aOK && bOK && (b.Low > a.Low || a.High > b.High) {
		rule("range_b", of("range_a"), "range_b %g..%g does not contain range_a %g..%g", b.Low, b.High, a.Low, a.High)
	}
	switch bh := p.BandHysteresis; {
	case bh < 0:
		rule("band_hysteresis", nil, "must be >= 0, got %g", bh)
	case aOK && (a.Low+bh >= 1 || a.High-bh <= 1):
		rule("band_hysteresis", of("range_a"), "band_hysteresis %g must be less than the distance from 1 pu to either end of range_a %g..%g", bh, a.Low, a.High)
	}

	// 0 < interruption < sag < 1 < swell, and the hysteresis keeps each end
	// on its side (IEC 61000-4-30).
	in, sag, sw := p.InterruptionThreshold, p.SagThreshold, p.SwellThreshold
	thrOK := true
	if sag >= 1 {
		rule("sag_threshold", nil, "%g must be below 1 pu", sag)
		thrOK = false
	}
	if sw <= 1 {
		rule("swell_threshold", nil, "%g must be above 1 pu", sw)
		thrOK = false
	}
	switch {
	case in <= 0:
		rule("interruption_threshold", nil, "must be > 0, got %g", in)
		thrOK = false
	case in >= sag:
		rule("interruption_threshold", of("sag_threshold"), "interruption_threshold %g must be below sag_threshold %g", in, sag)
		thrOK = false
	}
	switch h := p.Hysteresis; {
	case h < 0:
		rule("hysteresis", nil, "must be >= 0, got %g", h)
	case !thrOK:
	case sag+h >= 1:
		rule("hysteresis", of("sag_threshold"), "sag_threshold + hysteresis (%g + %g) must stay below 1 pu", sag, h)
	case sw-h <= 1:
		rule("hysteresis", of("swell_threshold"), "swell_threshold - hysteresis (%g - %g) must stay above 1 pu", sw, h)
	case in+h > sag:
		rule("hysteresis", of("interruption_threshold", "sag_threshold"), "interruption_threshold + hysteresis (%g + %g) must not exceed sag_threshold %g", in, h, sag)
	}
	// IEEE 1159 long duration categories.
	if uv := p.UndervoltageMin; in < sag && !(in <= uv && uv < sag) {
		rule("undervoltage_min", of("interruption_threshold", "sag_threshold"), "undervoltage_min %g must be at least interruption_threshold %g and below sag_threshold %g", uv, in, sag)
	}
	if ov := p.OvervoltageMax; !(ov > sw) {
		rule("overvoltage_max", of("swell_threshold"), "overvoltage_max %g must be above swell_threshold %g", ov, sw)
	}

	// How long a band excursion must last, and the IEEE 1159 duration
	// boundaries.
	if p.BandPersistence < time.Second || p.BandPersistence > 10*time.Minute {
		rule("band_persistence", nil, "%s is outside 1s..10m", p.BandPersistence)
	}
	switch {
	case p.InstantaneousMax <= 0:
		rule("instantaneous_max", nil, "must be > 0, got %s", p.InstantaneousMax)
	case p.InstantaneousMax > p.MomentaryMax:
		rule("instantaneous_max", of("momentary_max"), "instantaneous_max %s must not exceed momentary_max %s", p.InstantaneousMax, p.MomentaryMax)
	case p.MomentaryMax >= p.TemporaryMax:
		rule("momentary_max", of("temporary_max"), "momentary_max %s must be shorter than temporary_max %s", p.MomentaryMax, p.TemporaryMax)
	}
	if p.RecloseWindow <= 0 {
		rule("reclose_window", nil, "must be > 0, got %s", p.RecloseWindow)
	}
	switch {
	case p.LockoutAfter <= 0:
		rule("lockout_after", nil, "must be > 0, got %s", p.LockoutAfter)
	case p.RecloseWindow > 0 && p.LockoutAfter > p.RecloseWindow:
		rule("lockout_after", of("reclose_window"), "lockout_after %s must not exceed reclose_window %s", p.LockoutAfter, p.RecloseWindow)
	}
	if p.CommLossPolls < 1 {
		rule("comm_loss_polls", nil, "must be >= 1, got %d", p.CommLossPolls)
	}
	if p.CommLossAfter <= 0 {
		rule("comm_loss_after", nil, "must be > 0, got %s", p.CommLossAfter)
	}
	if p.SustainedAfter <= 0 {
		rule("sustained_after", nil, "must be > 0, got %s", p.SustainedAfter)
	}

	for _, e := range rules {
		if !slices.ContainsFunc(infinite, e.quotes) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("validate detection params: %w", errs)
	}
	return nil
}

// classify gives the IEEE 1159 category of an ended RMS variation.
func (p *Params) classify(k Kind, d time.Duration, worst float64) Category {
	switch k {
	case KindInterruption:
		switch {
		case d <= p.MomentaryMax:
			return CategoryMomentaryInterruption
		case d <= p.TemporaryMax:
			return CategoryTemporaryInterruption
		}
		return CategorySustainedInterruption
	case KindSag:
		switch {
		case d < p.InstantaneousMax:
			return CategoryInstantaneousSag
		case d <= p.MomentaryMax:
			return CategoryMomentarySag
		case d <= p.TemporaryMax:
			return CategoryTemporarySag
		case worst >= p.UndervoltageMin:
			return CategoryUndervoltage
		}
		return CategoryLongDurationSag
	case KindSwell:
		switch {
		case d < p.InstantaneousMax:
			return CategoryInstantaneousSwell
		case d <= p.MomentaryMax:
			return CategoryMomentarySwell
		case d <= p.TemporaryMax:
			return CategoryTemporarySwell
		case worst <= p.OvervoltageMax:
			return CategoryOvervoltage
		}
		return CategoryLongDurationSwell
	}
	return CategoryNone
}

// class1366 is the IEEE 1366 class of an interruption of duration d.
func (p *Params) class1366(d time.Duration) Category {
	if d < p.SustainedAfter {
		return CategoryMomentary
	}
	return CategorySustained
}
