package detect

import (
	"math"
	"time"
)

// counterDelta updates a cumulative counter with a new reading and returns
// how far it advanced, and whether the delta means anything (a previous
// reading exists). A counter going back or jumping beyond maxCounterStep is
// resynchronised with a delta of 0.
func counterDelta(prev *float64, known *bool, v float64) (int, bool) {
	v = math.Floor(v)
	old, had := *prev, *known
	*prev, *known = v, true
	if !had {
		return 0, false
	}
	if v <= old || v-old > maxCounterStep {
		return 0, true
	}
	return int(v - old), true
}

// evalSwitching applies the breaker, lockout and counter readings of a poll.
func (d *Detector) evalSwitching(k int32, dev *device) {
	wasOpen := dev.isOpen()
	// delta counts the trips the counters saw since the previous poll;
	// counted says the trip counter was read now and before.
	delta, counted := 0, false
	if dev.have&(1<<roleTrip) != 0 {
		delta, counted = counterDelta(&dev.tripCount, &dev.tripKnown, dev.lat[roleTrip])
	}
	if dev.have&(1<<roleShot) != 0 {
		n, _ := counterDelta(&dev.shotCount, &dev.shotKnown, dev.lat[roleShot])
		if !dev.hasTrip {
			delta = n
		}
	}

	if dev.have&(1<<roleBreaker) != 0 {
		t := dev.latT[roleBreaker]
		closed := dev.lat[roleBreaker] >= 0.5
		switch dev.breaker {
		case BreakerUnknown:
			dev.breaker = BreakerOpen
			if closed {
				dev.breaker = BreakerClosed
			}
		case BreakerClosed:
			switch {
			case !closed:
				dev.breaker = BreakerOpen
				if counted && delta == 0 {
					d.instant(dev, KindBreakerOpen, t, 0, 0)
					break
				}
				n, fl := max(delta, 1), Flags(0)
				if n > 1 {
					fl = FlagInferred
				}
				d.instant(dev, KindTrip, t, n, fl)
				d.seqAddTrips(dev, t, n, fl)
				dev.openedAt = t
			case delta > 0:
				// Tripped and reclosed between two polls.
				d.instant(dev, KindTrip, t, delta, FlagInferred)
				d.seqAddTrips(dev, t, delta, FlagInferred)
				d.instant(dev, KindReclose, t, 0, FlagInferred)
				dev.seqReclose = t
			}
		case BreakerOpen:
			if delta > 0 && dev.seq.open {
				// Reclosed and tripped again between two polls.
				dev.seq.ev.Shots += delta
				dev.seq.ev.Flags |= FlagInferred
				dev.seqTrip = t
			}
			if closed {
				dev.breaker = BreakerClosed
				if dev.seq.open {
					d.instant(dev, KindReclose, t, 0, 0)
					dev.seqReclose = t
					dev.seqLongest = max(dev.seqLongest, t-dev.openedAt)
				} else {
					d.instant(dev, KindBreakerClose, t, 0, 0)
				}
				if dev.lockout.open && !dev.hasLock {
					d.end(&dev.lockout, t, 0, 0)
				}
			}
		}
	}

	if dev.have&(1<<roleLockout) != 0 {
		t := dev.latT[roleLockout]
		locked := dev.lat[roleLockout] >= 0.5
		switch {
		case locked && !dev.lockout.open:
			fl := Flags(0)
			if !dev.lockKnown {
				fl = FlagInitial
			}
			d.lockoutStart(dev, t, fl)
		case !locked && dev.lockout.open:
			d.end(&dev.lockout, t, 0, 0)
		}
		dev.lockKnown = true
	}

	if dev.isOpen() != wasOpen {
		t := max(dev.latT[roleBreaker], dev.latT[roleLockout])
		d.propagate(k, t)
	}
}

// seqAddTrips counts n trips at t into the recloser sequence, starting one
// when none is in progress or the window of the current one has passed.
func (d *Detector) seqAddTrips(dev *device, t int64, n int, fl Flags) {
	if dev.seq.open && t-dev.seqFirst > int64(d.p.RecloseWindow) {
		d.seqResolve(dev, OutcomeReclosed, dev.seqReclose)
	}
	dev.seqTrip = t
	if dev.seq.open {
		dev.seq.ev.Shots += n
		dev.seq.ev.Flags |= fl
		return
	}
	dev.seqFirst, dev.seqReclose, dev.seqLongest = t, 0, 0
	d.start(dev, &dev.seq, Event{
		Kind: KindRecloserSequence, Start: t, Severity: SeverityWarning,
		DurationPrecision: time.Duration(dev.interval), Shots: n, Flags: fl,
	})
}

// seqResolve ends the sequence in progress at end.
func (d *Detector) seqResolve(dev *device, o Outcome, end int64) {
	e := &dev.seq.ev
	if end < e.Start {
		end = e.Start
	}
	e.Outcome = o
	// A reclosed sequence is momentary unless one of its open times
	// reached the sustained boundary; a lockout is a sustained outage.
	e.Category = CategorySustained
	if o == OutcomeReclosed {
		e.Category = d.p.class1366(time.Duration(dev.seqLongest))
	}
	d.end(&dev.seq, end, 0, 0)
}

// lockoutStart opens a lockout at t and ends the sequence in progress with
// OutcomeLockout.
func (d *Detector) lockoutStart(dev *device, t int64, fl Flags) {
	if dev.seq.open {
		d.seqResolve(dev, OutcomeLockout, t)
	}
	d.start(dev, &dev.lockout, Event{
		Kind: KindLockout, Start: t, Category: CategorySustained, Severity: SeverityCritical,
		DurationPrecision: time.Duration(dev.interval), Flags: fl,
	})
}

// switchTimers resolves a sequence whose window has passed with the breaker
// closed, and infers a lockout on a device without a lockout point.
func (d *Detector) switchTimers(dev *device, now int64) {
	if !dev.seq.open {
		return
	}
	switch {
	case dev.breaker == BreakerClosed && now-dev.seqFirst >= int64(d.p.RecloseWindow):
		d.seqResolve(dev, OutcomeReclosed, dev.seqReclose)
	case dev.breaker == BreakerOpen && !dev.hasLock && now-dev.seqTrip >= int64(d.p.LockoutAfter):
		d.lockoutStart(dev, dev.seqTrip, FlagInferred)
	}
}
