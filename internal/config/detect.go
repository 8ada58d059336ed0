package config

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/feederd/feederd/internal/detect"
)

type rawDetect struct {
	RangeA                rawRange       `yaml:"range_a"`
	RangeB                rawRange       `yaml:"range_b"`
	BandPersistence       *time.Duration `yaml:"band_persistence"`
	BandHysteresis        *float64       `yaml:"band_hysteresis"`
	SagThreshold          *float64       `yaml:"sag_threshold"`
	SwellThreshold        *float64       `yaml:"swell_threshold"`
	InterruptionThreshold *float64       `yaml:"interruption_threshold"`
	Hysteresis            *float64       `yaml:"hysteresis"`
	UndervoltageMin       *float64       `yaml:"undervoltage_min"`
	OvervoltageMax        *float64       `yaml:"overvoltage_max"`
	InstantaneousMax      *time.Duration `yaml:"instantaneous_max"`
	MomentaryMax          *time.Duration `yaml:"momentary_max"`
	TemporaryMax          *time.Duration `yaml:"temporary_max"`
	RecloseWindow         *time.Duration `yaml:"reclose_window"`
	LockoutAfter          *time.Duration `yaml:"lockout_after"`
	CommLossPolls         *int           `yaml:"comm_loss_polls"`
	CommLossAfter         *time.Duration `yaml:"comm_loss_after"`
	SustainedAfter        *time.Duration `yaml:"sustained_after"`
}

type rawRange struct {
	Low  *float64 `yaml:"low"`
	High *float64 `yaml:"high"`
}

// detection applies the detect block to detect.DefaultParams and checks the
// result with detect.Params.Validate, the one home of its rules. This only
// maps each broken rule to the file: a parameter's key path is "detect."
// followed by its name, a rule between two keys is reported on the first
// of them that the file sets, and rules reported on one key share its
// error.
func (l *loader) detection(r *rawDetect) detect.Params {
	p := l.d.Detect
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

	err := p.Validate()
	var errs detect.Errors
	switch {
	case errors.As(err, &errs):
		// The file keeps one error per key path: rules placed on the same
		// key are reported together, in Validate's order.
		var paths []string
		at := map[string][]*detect.FieldError{}
		for _, e := range errs {
			if slices.ContainsFunc(e.Fields(), func(f string) bool { return l.undecoded(detectPath(f)) }) {
				continue
			}
			path := l.detectPlace(e)
			if at[path] == nil {
				paths = append(paths, path)
			}
			at[path] = append(at[path], e)
		}
		for _, path := range paths {
			msgs := make([]string, len(at[path]))
			causes := make([]error, len(at[path]))
			for i, e := range at[path] {
				msgs[i], causes[i] = e.Err.Error(), e
			}
			l.s.addErr(path, errors.Join(causes...), "%s", strings.Join(msgs, "; "))
		}
	case err != nil:
		l.s.addErr("detect", err, "%v", err) // Validate returns only Errors
	}
	return p
}

// detectPlace returns the key path a broken rule is reported on: the first
// key it quotes that the file sets, or its own.
func (l *loader) detectPlace(e *detect.FieldError) string {
	for _, f := range e.Fields() {
		if l.s.Has(detectPath(f)) {
			return detectPath(f)
		}
	}
	return detectPath(e.Field)
}

// detectPath is the key path of the detect parameter named name.
func detectPath(name string) string { return "detect." + name }

// undecoded reports whether path or a key below it has an error: its value
// in the model is not the file's, and a rule quoting it would judge the
// default instead (the key has its error already). A rule quoting only an
// end of a range whose mapping did not decode needs no check: it reads that
// end alone, a default, which breaks no rule.
func (l *loader) undecoded(path string) bool { return l.s.HasErrorUnder(path) }
