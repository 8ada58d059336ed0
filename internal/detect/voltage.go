package detect

import (
	"time"
)

// evalVoltage runs the RMS-variation and band machines on the phases read
// in this poll.
func (d *Detector) evalVoltage(dev *device) {
	p := &d.p
	var (
		t      int64
		known  Phases
		pu     [3]float64
		lo, hi float64
	)
	for i := range 3 {
		r := roleVA + uint8(i)
		if dev.have&(1<<r) == 0 {
			continue
		}
		v := dev.lat[r] * dev.info.PTRatio / dev.info.Nominal
		if known == 0 {
			lo, hi = v, v
		} else {
			lo, hi = min(lo, v), max(hi, v)
		}
		pu[i] = v
		known |= 1 << i
		t = max(t, dev.latT[r])
		dev.pu[i], dev.puT[i] = v, dev.latT[r]
	}
	// The time since the previous voltage reading bounds where an edge
	// decided now really happened.
	gap := dev.interval
	if dev.lastVoltT != 0 && t-dev.lastVoltT > gap {
		gap = t - dev.lastVoltT
	}
	dev.lastVoltT = t
	prec := time.Duration(gap)
	var fl Flags
	if gap > 2*dev.interval {
		fl = FlagGap
	}
	all := known == dev.phases

	// Sag: any phase below starts it, all phases recovered end it.
	if dev.sag.open {
		e := &dev.sag.ev
		if lo < e.Worst {
			e.Worst, e.WorstVolts = lo, lo*dev.info.Nominal
		}
		e.Phases |= below(&pu, known, p.SagThreshold)
		if all && lo >= p.SagThreshold+p.Hysteresis {
			e.Category = p.classify(KindSag, time.Duration(t-e.Start), e.Worst)
			d.end(&dev.sag, t, prec, fl)
		}
	} else if lo < p.SagThreshold {
		d.start(dev, &dev.sag, Event{
			Kind: KindSag, Start: t, Worst: lo, WorstVolts: lo * dev.info.Nominal,
			Phases: below(&pu, known, p.SagThreshold), Severity: SeverityWarning,
			DurationPrecision: prec, Flags: fl,
		})
	}

	// Swell mirrors the sag.
	if dev.swell.open {
		e := &dev.swell.ev
		if hi > e.Worst {
			e.Worst, e.WorstVolts = hi, hi*dev.info.Nominal
		}
		e.Phases |= above(&pu, known, p.SwellThreshold)
		if all && hi <= p.SwellThreshold-p.Hysteresis {
			e.Category = p.classify(KindSwell, time.Duration(t-e.Start), e.Worst)
			d.end(&dev.swell, t, prec, fl)
		}
	} else if hi > p.SwellThreshold {
		d.start(dev, &dev.swell, Event{
			Kind: KindSwell, Start: t, Worst: hi, WorstVolts: hi * dev.info.Nominal,
			Phases: above(&pu, known, p.SwellThreshold), Severity: SeverityWarning,
			DurationPrecision: prec, Flags: fl,
		})
	}

	// Interruption: all phases below start it, any phase recovered ends it.
	if dev.intr.open {
		e := &dev.intr.ev
		if lo < e.Worst {
			e.Worst, e.WorstVolts = lo, lo*dev.info.Nominal
		}
		if hi >= p.InterruptionThreshold+p.Hysteresis {
			e.Category = p.classify(KindInterruption, time.Duration(t-e.Start), e.Worst)
			d.end(&dev.intr, t, prec, fl)
		}
	} else if all && hi < p.InterruptionThreshold {
		d.start(dev, &dev.intr, Event{
			Kind: KindInterruption, Start: t, Worst: lo, WorstVolts: lo * dev.info.Nominal,
			Phases: dev.phases, Severity: SeverityCritical, DurationPrecision: prec, Flags: fl,
		})
		if dev.sag.open {
			dev.sag.ev.Flags |= FlagInterruption
		}
	}

	for i := range 3 {
		if known&(1<<i) == 0 {
			continue
		}
		if pu[i] < p.InterruptionThreshold {
			// A dead phase is an interruption, not a band excursion: its
			// band events end and nothing is pending.
			for r := range dev.band[i] {
				b := &dev.band[i][r]
				b.pending = false
				if b.open {
					d.end(&b.track, t, prec, fl)
				}
			}
			continue
		}
		for r := range dev.band[i] {
			d.bandStep(dev, &dev.band[i][r], r, Phases(1)<<i, pu[i], t, prec, fl)
		}
	}
}

func below(pu *[3]float64, known Phases, thr float64) Phases {
	var m Phases
	for i := range 3 {
		if known&(1<<i) != 0 && pu[i] < thr {
			m |= 1 << i
		}
	}
	return m
}

func above(pu *[3]float64, known Phases, thr float64) Phases {
	var m Phases
	for i := range 3 {
		if known&(1<<i) != 0 && pu[i] > thr {
			m |= 1 << i
		}
	}
	return m
}

// bandStep feeds one phase reading v at t to the machine of range r.
func (d *Detector) bandStep(dev *device, b *bandTrack, r int, ph Phases, v float64, t int64, prec time.Duration, fl Flags) {
	rg := d.ranges[r]
	h := d.p.BandHysteresis
	out := max(rg.Low-v, v-rg.High) // > 0 outside the range
	inside := v >= rg.Low+h && v <= rg.High-h
	switch {
	case b.open:
		if out > b.worstDev {
			b.worstDev = out
			b.ev.Worst, b.ev.WorstVolts = v, v*dev.info.Nominal
		}
		if inside {
			d.end(&b.track, t, prec, fl)
		}
	case b.pending:
		// C84.1 judges voltage that stays outside: any reading back inside
		// the range resets the persistence timer (hysteresis only delays
		// the end of an event that has started).
		if out <= 0 {
			b.pending = false
			return
		}
		if out > b.worstDev {
			b.worstDev, b.worst = out, v
		}
		if t-b.since >= int64(d.p.BandPersistence) {
			d.bandStart(dev, b, r, ph)
		}
	case out > 0:
		b.pending, b.since, b.worstDev, b.worst, b.prec, b.flags = true, t, out, v, prec, fl
	}
}

// bandStart opens the event of a pending excursion that has persisted.
func (d *Detector) bandStart(dev *device, b *bandTrack, r int, ph Phases) {
	b.pending = false
	cat, sev := CategoryRangeA, SeverityWarning
	if r == 1 {
		cat, sev = CategoryRangeB, SeverityCritical
	}
	d.start(dev, &b.track, Event{
		Kind: KindBand, Start: b.since, Worst: b.worst, WorstVolts: b.worst * dev.info.Nominal,
		Phases: ph, Category: cat, Severity: sev, DurationPrecision: b.prec, Flags: b.flags,
	})
}
