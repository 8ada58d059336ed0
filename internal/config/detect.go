package config

import (
	"strings"
	"time"

	"github.com/feederd/feederd/internal/detect"
)

// detection applies the detect block to detect.DefaultParams. It checks
// every rule of detect.Params.Validate itself, so that each error names the
// key that breaks it (a rule between two keys names the one the file sets),
// and runs Validate last as a backstop for a rule added there and not here.
func (l *loader) detection(r *rawDetect) detect.Params {
	p := l.d.Detect
	before := l.s.Len()

	const pre = "detect."
	// decodeFile has rejected NaN and infinities.
	float := func(src *float64, dst *float64) {
		if src != nil {
			*dst = *src
		}
	}
	dur := func(src *time.Duration, dst *time.Duration) {
		if src != nil {
			*dst = *src
		}
	}
	float(r.RangeA.Low, &p.RangeA.Low)
	float(r.RangeA.High, &p.RangeA.High)
	float(r.RangeB.Low, &p.RangeB.Low)
	float(r.RangeB.High, &p.RangeB.High)
	float(r.BandHysteresis, &p.BandHysteresis)
	float(r.SagThreshold, &p.SagThreshold)
	float(r.SwellThreshold, &p.SwellThreshold)
	float(r.InterruptionThreshold, &p.InterruptionThreshold)
	float(r.Hysteresis, &p.Hysteresis)
	float(r.UndervoltageMin, &p.UndervoltageMin)
	float(r.OvervoltageMax, &p.OvervoltageMax)
	dur(r.BandPersistence, &p.BandPersistence)
	dur(r.InstantaneousMax, &p.InstantaneousMax)
	dur(r.MomentaryMax, &p.MomentaryMax)
	dur(r.TemporaryMax, &p.TemporaryMax)
	dur(r.RecloseWindow, &p.RecloseWindow)
	dur(r.LockoutAfter, &p.LockoutAfter)
	dur(r.CommLossAfter, &p.CommLossAfter)
	dur(r.SustainedAfter, &p.SustainedAfter)
	if r.CommLossPolls != nil {
		p.CommLossPolls = *r.CommLossPolls
	}

	// A value that did not decode (NaN, a string) would make the rules
	// between voltages report its default instead: check them only when
	// every detect value decoded.
	decoded := !l.s.HasErrorUnder(strings.TrimSuffix(pre, "."))
	if decoded {
		l.detectVoltages(&p)
	}
	given, add := l.detectGiven, l.s.add

	if p.BandPersistence < time.Second || p.BandPersistence > 10*time.Minute {
		add(pre+"band_persistence", "%s is outside 1s..10m", p.BandPersistence)
	}
	switch {
	case p.InstantaneousMax <= 0:
		add(pre+"instantaneous_max", "must be > 0, got %s", p.InstantaneousMax)
	case p.InstantaneousMax > p.MomentaryMax:
		add(given("instantaneous_max", "momentary_max"), "instantaneous_max %s must not exceed momentary_max %s", p.InstantaneousMax, p.MomentaryMax)
	case p.MomentaryMax >= p.TemporaryMax:
		add(given("momentary_max", "temporary_max"), "momentary_max %s must be shorter than temporary_max %s", p.MomentaryMax, p.TemporaryMax)
	}
	l.positive(pre+"reclose_window", p.RecloseWindow)
	switch {
	case p.LockoutAfter <= 0:
		add(pre+"lockout_after", "must be > 0, got %s", p.LockoutAfter)
	case p.RecloseWindow > 0 && p.LockoutAfter > p.RecloseWindow:
		add(given("lockout_after", "reclose_window"), "lockout_after %s must not exceed reclose_window %s", p.LockoutAfter, p.RecloseWindow)
	}
	if p.CommLossPolls < 1 {
		add(pre+"comm_loss_polls", "must be >= 1, got %d", p.CommLossPolls)
	}
	l.positive(pre+"comm_loss_after", p.CommLossAfter)
	l.positive(pre+"sustained_after", p.SustainedAfter)

	if decoded && l.s.Len() == before {
		if err := p.Validate(); err != nil {
			l.s.addErr("detect", err, "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	return p
}

// detectGiven returns the path of the first of the detect keys that the
// file sets, or of the first key: a rule between two values is reported
// where the file breaks it.
func (l *loader) detectGiven(keys ...string) string {
	for _, k := range keys {
		if l.s.Has("detect." + k) {
			return "detect." + k
		}
	}
	return "detect." + keys[0]
}

// detectVoltages checks the per-unit values of p, all finite, with the
// expressions of detect.Params.Validate.
func (l *loader) detectVoltages(p *detect.Params) {
	const pre = "detect."
	given, add := l.detectGiven, l.s.add
	a, b := p.RangeA, p.RangeB
	aOK := false
	switch {
	case a.Low >= a.High:
		add(pre+"range_a", "low %g is not below high %g", a.Low, a.High)
	case a.Low >= 1:
		add(pre+"range_a.low", "%g must be below 1 pu", a.Low)
	case a.High <= 1:
		add(pre+"range_a.high", "%g must be above 1 pu", a.High)
	default:
		aOK = true
	}
	bOK := false
	switch {
	case b.Low <= 0:
		add(pre+"range_b.low", "must be > 0, got %g", b.Low)
	case b.Low >= b.High:
		add(pre+"range_b", "low %g is not below high %g", b.Low, b.High)
	default:
		bOK = true
	}
	if aOK && bOK && (b.Low > a.Low || a.High > b.High) {
		add(given("range_b", "range_a"), "range_b %g..%g does not contain range_a %g..%g", b.Low, b.High, a.Low, a.High)
	}
	switch bh := p.BandHysteresis; {
	case bh < 0:
		add(pre+"band_hysteresis", "must be >= 0, got %g", bh)
	case aOK && (a.Low+bh >= 1 || a.High-bh <= 1):
		add(given("band_hysteresis", "range_a"), "band_hysteresis %g must be less than the distance from 1 pu to either end of range_a %g..%g", bh, a.Low, a.High)
	}

	in, sag, sw := p.InterruptionThreshold, p.SagThreshold, p.SwellThreshold
	thrOK := true
	if sag >= 1 {
		add(pre+"sag_threshold", "%g must be below 1 pu", sag)
		thrOK = false
	}
	if sw <= 1 {
		add(pre+"swell_threshold", "%g must be above 1 pu", sw)
		thrOK = false
	}
	switch {
	case in <= 0:
		add(pre+"interruption_threshold", "must be > 0, got %g", in)
		thrOK = false
	case in >= sag:
		add(given("interruption_threshold", "sag_threshold"), "interruption_threshold %g must be below sag_threshold %g", in, sag)
		thrOK = false
	}
	switch h := p.Hysteresis; {
	case h < 0:
		add(pre+"hysteresis", "must be >= 0, got %g", h)
	case !thrOK:
	case sag+h >= 1:
		add(given("hysteresis", "sag_threshold"), "sag_threshold + hysteresis (%g + %g) must stay below 1 pu", sag, h)
	case sw-h <= 1:
		add(given("hysteresis", "swell_threshold"), "swell_threshold - hysteresis (%g - %g) must stay above 1 pu", sw, h)
	case in+h > sag:
		add(given("hysteresis", "interruption_threshold", "sag_threshold"), "interruption_threshold + hysteresis (%g + %g) must not exceed sag_threshold %g", in, h, sag)
	}
	if uv := p.UndervoltageMin; in < sag && !(in <= uv && uv < sag) {
		add(given("undervoltage_min", "interruption_threshold", "sag_threshold"), "undervoltage_min %g must be at least interruption_threshold %g and below sag_threshold %g", uv, in, sag)
	}
	if ov := p.OvervoltageMax; !(ov > sw) {
		add(given("overvoltage_max", "swell_threshold"), "overvoltage_max %g must be above swell_threshold %g", ov, sw)
	}
}
