package detect

import (
	"errors"
	"fmt"
	"math"
)

// Carry is what one device's detection carries across a restart of
// feederd: the events in progress, so that the restarted process continues
// or ends them (one event keeps one ID and one start), and the event
// counter, so that new events get new IDs.
type Carry struct {
	Index uint32
	// Counter is the last per-device event counter used (the low 32 bits
	// of Event.ID).
	Counter uint32
	// LastVoltage is the time of the last voltage reading (Unix ns), so
	// that the first reading after the restart measures the gap.
	LastVoltage int64
	// Open holds the events in progress (Stage StageStart).
	Open []Event
}

// Suspend returns the carry of every device that has an event in progress
// or has used an event counter. Call it once no more samples arrive.
func (d *Detector) Suspend() []Carry {
	var out []Carry
	for k := range d.devs {
		dev := &d.devs[k]
		if dev.counter == 0 {
			continue
		}
		c := Carry{Index: dev.info.Index, Counter: dev.counter, LastVoltage: dev.lastVoltT}
		for _, tr := range dev.tracks() {
			if tr.open {
				c.Open = append(c.Open, tr.ev)
			}
		}
		out = append(out, c)
	}
	return out
}

// tracks lists the device's event tracks, band tracks last.
func (dev *device) tracks() []*track {
	t := []*track{&dev.comm, &dev.dead, &dev.lockout, &dev.seq, &dev.intr, &dev.sag, &dev.swell}
	for p := range dev.band {
		for r := range dev.band[p] {
			t = append(t, &dev.band[p][r].track)
		}
	}
	return t
}

// Resume reopens carried events before the first sample. A carried event
// continues until the evidence that ends it arrives, as if there had been
// no restart; it is flagged FlagGap, since nothing was observed while
// feederd was down. A carry naming a device not in the Detector's set, or
// an event this device cannot hold, is reported and skipped; the rest is
// resumed.
func (d *Detector) Resume(carries []Carry) error {
	var errs []error
	for _, c := range carries {
		k := d.local(int(c.Index))
		if k < 0 {
			errs = append(errs, fmt.Errorf("resume: device index %d is not in this detector", c.Index))
			continue
		}
		dev := &d.devs[k]
		dev.counter = max(dev.counter, c.Counter)
		dev.lastVoltT = c.LastVoltage
		for _, ev := range c.Open {
			ev.Device = dev.info.Index
			ev.Stage = StageStart
			ev.End = 0
			ev.Flags |= FlagGap
			dev.counter = max(dev.counter, uint32(ev.ID))
			tr := d.trackFor(dev, &ev)
			if tr == nil {
				errs = append(errs, fmt.Errorf("resume: device %s: no place for a %s event", dev.info.ID, ev.Kind))
				continue
			}
			tr.ev, tr.open = ev, true
			switch ev.Kind {
			case KindCommLost:
				// Lost until a good answer, as before the restart: the
				// new process has neither polled it nor waited for it.
				dev.failures, dev.firstFail = max(d.p.CommLossPolls, 1), ev.Start
			case KindDeEnergized:
				dev.en = energy{state: EnergyDeEnergized, cause: ev.Cause, causeDev: -1}
				if ev.Cause.Upstream() {
					dev.en.causeDev = d.local(int(ev.CauseDevice))
				}
			case KindRecloserSequence:
				dev.seqFirst, dev.seqTrip, dev.seqReclose, dev.openedAt = ev.Start, ev.Start, ev.Start, ev.Start
			}
		}
	}
	return errors.Join(errs...)
}

// trackFor returns the track a carried event of dev goes to, nil if none.
func (d *Detector) trackFor(dev *device, ev *Event) *track {
	switch ev.Kind {
	case KindCommLost:
		return &dev.comm
	case KindDeEnergized:
		return &dev.dead
	case KindLockout:
		return &dev.lockout
	case KindRecloserSequence:
		return &dev.seq
	case KindInterruption:
		return &dev.intr
	case KindSag:
		return &dev.sag
	case KindSwell:
		return &dev.swell
	case KindBand:
		r := -1
		switch ev.Category {
		case CategoryRangeA:
			r = 0
		case CategoryRangeB:
			r = 1
		}
		p := -1
		switch ev.Phases {
		case PhaseA:
			p = 0
		case PhaseB:
			p = 1
		case PhaseC:
			p = 2
		}
		if r < 0 || p < 0 || dev.phases&ev.Phases == 0 {
			return nil
		}
		b := &dev.band[p][r]
		rg := d.ranges[r]
		b.worstDev = math.Max(rg.Low-ev.Worst, ev.Worst-rg.High)
		return &b.track
	}
	return nil
}
