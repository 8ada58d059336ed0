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

// evalSwitching applies the breaker, lockout and counter readings of a poll
// at t.
func (d *Detector) evalSwitching(dev *device, t int64) {
	// Counter deltas since the previous poll; counted says the trip
	// counter was read now and before.
	trips, counted := 0, false
	if dev.have&(1<<roleTrip) != 0 {
		trips, counted = counterDelta(&dev.tripCount, &dev.tripKnown, dev.lat[roleTrip])
	}
	shots, shotCounted := 0, false
	if dev.have&(1<<roleShot) != 0 {
		shots, shotCounted = counterDelta(&dev.shotCount, &dev.shotKnown, dev.lat[roleShot])
	}
	if !counted {
		trips = -1
	}
	if !shotCounted || dev.hasTrip {
		shots = -1 // the trip counter, where there is one, decides
	}

	if dev.have&(1<<roleBreaker) != 0 {
		bt := dev.latT[roleBreaker]
		closed := dev.lat[roleBreaker] >= 0.5
		prevT := dev.swT
		dev.swT = bt
		switch dev.breaker {
		case BreakerUnknown:
			dev.breaker = BreakerOpen
			if closed {
				dev.breaker = BreakerClosed
				if dev.lockout.open && !dev.hasLock {
					// An inferred lockout carried over a restart ends
					// when the breaker is found closed.
					d.end(&dev.lockout, bt, 0, FlagGap)
				}
			}
		case BreakerClosed:
			if !closed && trips == 0 {
				dev.breaker = BreakerOpen
				d.instant(dev, KindBreakerOpen, bt, 0, 0)
				break
			}
			d.operations(dev, prevT, bt, closed, trips, shots)
		case BreakerOpen:
			d.operations(dev, prevT, bt, closed, trips, shots)
		}
	}

	if dev.have&(1<<roleLockout) != 0 {
		lt := dev.latT[roleLockout]
		locked := dev.lat[roleLockout] >= 0.5
		switch {
		case locked && !dev.lockout.open:
			fl := Flags(0)
			if !dev.lockKnown {
				fl = FlagInitial
			}
			d.lockoutStart(dev, lt, fl)
		case !locked && dev.lockout.open:
			d.end(&dev.lockout, lt, 0, 0)
		}
		dev.lockKnown = true
	}
}

// operations emits the trips and recloses of a breaker between its reading
// at prevT and the one at t, which found it closed or open. trips (from a
// trip counter) or shots (recloses, from a shot counter) count them where
// known (-1: unknown). Breaker operations alternate, so the first one is a
// trip if the breaker was closed and a reclose if it was open, and their
// number follows from the counter and the two states. Operations no poll saw
// are FlagInferred and spread evenly over (prevT, t], the last one at t;
// the one that explains a change of state is the last and is not inferred.
func (d *Detector) operations(dev *device, prevT, t int64, closed bool, trips, shots int) {
	wasClosed := dev.breaker == BreakerClosed
	// n operations in all; a trip first when the breaker was closed.
	n := 0
	switch {
	case trips >= 0:
		n = 2 * trips
		switch {
		case wasClosed && !closed:
			n-- // trip, (reclose, trip) × (trips-1)
		case !wasClosed && closed:
			n++ // reclose, (trip, reclose) × trips
		}
	case shots >= 0:
		n = 2 * shots
		switch {
		case wasClosed && !closed:
			n++ // trip, (reclose, trip) × shots
		case !wasClosed && closed:
			n = max(n-1, 1) // reclose, (trip, reclose) × (shots-1)
		}
	case wasClosed != closed:
		n = 1
	}
	if n == 0 {
		return
	}
	if prevT == 0 || prevT >= t || t-prevT < int64(n) {
		prevT = t - int64(dev.interval)
	}
	trip := wasClosed
	for j := 1; j <= n; j++ {
		at := prevT + (t-prevT)*int64(j)/int64(n)
		var fl Flags
		if j < n || wasClosed == closed {
			fl = FlagInferred
		}
		if trip {
			dev.breaker = BreakerOpen
			d.instant(dev, KindTrip, at, 1, fl)
			d.seqAddTrips(dev, at, 1, fl)
			dev.openedAt = at
		} else {
			dev.breaker = BreakerClosed
			if dev.seq.open {
				d.instant(dev, KindReclose, at, 0, fl)
				dev.seqReclose = at
				dev.seqLongest = max(dev.seqLongest, at-dev.openedAt)
			} else {
				d.instant(dev, KindBreakerClose, at, 0, fl)
			}
			if dev.lockout.open && !dev.hasLock {
				d.end(&dev.lockout, at, 0, 0)
			}
		}
		trip = !trip
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
