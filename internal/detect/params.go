package detect

import (
	"errors"
	"fmt"
	"math"
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

// Validate reports every inconsistent value, naming the field.
func (p Params) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	finite := func(name string, v float64) bool {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad("%s %v is not a finite number", name, v)
			return false
		}
		return true
	}
	ok := true
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"RangeA.Low", p.RangeA.Low}, {"RangeA.High", p.RangeA.High},
		{"RangeB.Low", p.RangeB.Low}, {"RangeB.High", p.RangeB.High},
		{"BandHysteresis", p.BandHysteresis}, {"SagThreshold", p.SagThreshold},
		{"SwellThreshold", p.SwellThreshold}, {"InterruptionThreshold", p.InterruptionThreshold},
		{"Hysteresis", p.Hysteresis}, {"UndervoltageMin", p.UndervoltageMin},
		{"OvervoltageMax", p.OvervoltageMax},
	} {
		ok = finite(f.name, f.v) && ok
	}
	if !ok {
		return errors.Join(errs...)
	}
	if !(0 < p.RangeB.Low && p.RangeB.Low <= p.RangeA.Low && p.RangeA.Low < 1 &&
		1 < p.RangeA.High && p.RangeA.High <= p.RangeB.High) {
		bad("ranges must satisfy 0 < RangeB.Low <= RangeA.Low < 1 < RangeA.High <= RangeB.High, got A %v..%v B %v..%v",
			p.RangeA.Low, p.RangeA.High, p.RangeB.Low, p.RangeB.High)
	}
	if p.BandPersistence < time.Second || p.BandPersistence > 10*time.Minute {
		bad("BandPersistence %v outside 1s..10m", p.BandPersistence)
	}
	if p.BandHysteresis < 0 || p.RangeA.Low+p.BandHysteresis >= 1 || p.RangeA.High-p.BandHysteresis <= 1 {
		bad("BandHysteresis %v must be >= 0 and keep 1 pu strictly inside Range A shrunk by it", p.BandHysteresis)
	}
	if !(0 < p.InterruptionThreshold && p.InterruptionThreshold < p.SagThreshold &&
		p.SagThreshold < 1 && 1 < p.SwellThreshold) {
		bad("thresholds must satisfy 0 < InterruptionThreshold < SagThreshold < 1 < SwellThreshold, got %v, %v, %v",
			p.InterruptionThreshold, p.SagThreshold, p.SwellThreshold)
	}
	if p.Hysteresis < 0 || p.SagThreshold+p.Hysteresis >= 1 || p.SwellThreshold-p.Hysteresis <= 1 ||
		p.InterruptionThreshold+p.Hysteresis > p.SagThreshold {
		bad("Hysteresis %v must be >= 0, keep the sag and swell ends on their side of 1 pu and the interruption end at or below SagThreshold", p.Hysteresis)
	}
	if !(p.InterruptionThreshold <= p.UndervoltageMin && p.UndervoltageMin < p.SagThreshold) {
		bad("UndervoltageMin %v must be in InterruptionThreshold..SagThreshold", p.UndervoltageMin)
	}
	if !(p.OvervoltageMax > p.SwellThreshold) {
		bad("OvervoltageMax %v must be above SwellThreshold %v", p.OvervoltageMax, p.SwellThreshold)
	}
	if !(0 < p.InstantaneousMax && p.InstantaneousMax <= p.MomentaryMax && p.MomentaryMax < p.TemporaryMax) {
		bad("durations must satisfy 0 < InstantaneousMax <= MomentaryMax < TemporaryMax, got %v, %v, %v",
			p.InstantaneousMax, p.MomentaryMax, p.TemporaryMax)
	}
	if p.RecloseWindow <= 0 {
		bad("RecloseWindow %v must be > 0", p.RecloseWindow)
	}
	if p.LockoutAfter <= 0 || p.LockoutAfter > p.RecloseWindow {
		bad("LockoutAfter %v must be in (0, RecloseWindow]", p.LockoutAfter)
	}
	if p.CommLossPolls < 1 {
		bad("CommLossPolls %d must be >= 1", p.CommLossPolls)
	}
	if p.CommLossAfter <= 0 {
		bad("CommLossAfter %v must be > 0", p.CommLossAfter)
	}
	if p.SustainedAfter <= 0 {
		bad("SustainedAfter %v must be > 0", p.SustainedAfter)
	}
	if len(errs) > 0 {
		return fmt.Errorf("validate detection params: %w", errors.Join(errs...))
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
