package physics

import (
	"fmt"
	"slices"
	"time"

	"github.com/feederd/feederd/internal/topology"
)

// Faults and protection.
//
// A fault sits on a node's section (its bus). While that bus is live, the
// fault current flows through every device between it and its source, and
// the faulted phases of that source's bus sag to faultSagPU; the nearest
// breaker or recloser on the way (the node's own device first) trips after
// its feeder's TripDelay (0: at the instant of the fault, so no sample sees
// the fault current).
//
// A trip opens the device and counts in trip_count. If the device has
// recloses left (shots < len(Reclose.Intervals)) it recloses after the
// next interval and counts a shot; a reclose into a fault that is still
// there trips again. Out of recloses, the trip locks out: lockout = 1,
// open until a close command. A reclose that holds for Reclose.Reset
// ends the sequence: shot_count returns to 0. Breakers have no recloses
// unless their node sets some. So with intervals [2s, 5s, 15s] a permanent
// fault makes trips at 0, 2, 7 and 22 s after it, shot_count 1, 2, 3 and
// lockout at the fourth trip.
//
// Sectionalizers between the fault and the tripping device count its
// trips; at Counts they open while the line is dead and stay open (lockout
// = 1) until closed, so the next reclose holds. A count is forgotten after
// Reset without another.
//
// A permanent fault stays until clear_fault. A temporary fault with a
// clear_after goes away that long after it began; without one, it goes
// away as soon as its section is dead (the arc is out), so the first
// reclose holds.

// faultSagPU is what the faulted phases of the source bus drop to while
// fault current flows.
const faultSagPU = 0.6

// DefaultFaultAmps is the fault current unless the event says otherwise.
const DefaultFaultAmps = 2000

type lineFault struct {
	id          uint64
	bus         int
	phases      Phases
	permanent   bool
	clearOnDead bool
	amps        float64
}

// voltEvent is a sag or swell: the bus's phases are held at mag (pu) until
// until; buses fed from it keep their drops below it.
type voltEvent struct {
	bus    int
	phases Phases
	mag    float64
	until  time.Time
}

// scheduler runs fn at simulated time at; the World's timeline implements it.
type scheduler func(at time.Time, fn func(now time.Time))

func (nw *network) addFault(bus int, ph Phases, permanent bool, clearAfter time.Duration, amps float64, now time.Time, after scheduler) {
	nw.nextID++
	f := &lineFault{id: nw.nextID, bus: bus, phases: ph, permanent: permanent, clearOnDead: !permanent && clearAfter == 0, amps: amps}
	nw.faults = append(nw.faults, f)
	if !permanent && clearAfter > 0 {
		after(now.Add(clearAfter), func(now time.Time) {
			nw.faults = slices.DeleteFunc(nw.faults, func(x *lineFault) bool { return x.id == f.id })
			nw.protect(now, after)
		})
	}
	nw.protect(now, after)
}

// clearFaults removes the faults on bus and returns how many there were.
func (nw *network) clearFaults(bus int) int {
	n := len(nw.faults)
	nw.faults = slices.DeleteFunc(nw.faults, func(f *lineFault) bool { return f.bus == bus })
	return n - len(nw.faults)
}

func (nw *network) addVoltEvent(bus int, ph Phases, mag float64, until time.Time) {
	nw.volts = append(nw.volts, &voltEvent{bus: bus, phases: ph, mag: mag, until: until})
}

// expire drops the sags and swells that are over at t.
func (nw *network) expire(t time.Time) {
	nw.volts = slices.DeleteFunc(nw.volts, func(v *voltEvent) bool { return !t.Before(v.until) })
}

// applyVoltEvents holds bus b at the magnitude of its sags and swells, the
// latest one last.
func (nw *network) applyVoltEvents(b int) {
	for _, v := range nw.volts {
		if v.bus != b {
			continue
		}
		for ph := range 3 {
			if v.phases.has(ph) {
				nw.volt[b][ph] = v.mag
			}
		}
	}
}

// faultSag lowers the faulted phases of source bus b while a fault it
// feeds draws current.
func (nw *network) faultSag(b int) {
	for _, f := range nw.faults {
		if !nw.live[f.bus] || nw.source[f.bus] != nw.source[b] {
			continue
		}
		for ph := range 3 {
			if f.phases.has(ph) {
				nw.volt[b][ph] *= faultSagPU
			}
		}
	}
}

// faultCurrents adds each live fault's current to the devices it flows
// through.
func (nw *network) faultCurrents() {
	clear(nw.faultAmps)
	for _, f := range nw.faults {
		if !nw.live[f.bus] {
			continue
		}
		path, _ := nw.feedPath(f.bus)
		for _, d := range path {
			for ph := range 3 {
				if f.phases.has(ph) {
					nw.faultAmps[d][ph] += f.amps
				}
			}
		}
	}
}

// feedPath lists the devices from live bus b to its source, nearest first,
// and the position in that list of the first breaker or recloser (-1:
// none).
func (nw *network) feedPath(b int) (devs []int, prot int) {
	prot = -1
	for b >= 0 && nw.via[b] >= 0 {
		if d := nw.edges[nw.via[b]].dev; d >= 0 {
			devs = append(devs, d)
			if prot < 0 && nw.nodes[d].node.Kind.Protective() {
				prot = len(devs) - 1
			}
		}
		b = nw.from[b]
	}
	return devs, prot
}

// protect settles the network at now: faults whose section died are gone
// if they were temporary, and every live fault trips its protective device
// (or arms its trip delay). Each pass opens one device, so a device
// downstream always gets the first chance.
func (nw *network) protect(now time.Time, after scheduler) {
	for range len(nw.nodes) + 1 {
		nw.energize()
		nw.faults = slices.DeleteFunc(nw.faults, func(f *lineFault) bool { return f.clearOnDead && !nw.live[f.bus] })
		tripped := false
		for _, f := range nw.faults {
			if !nw.live[f.bus] {
				continue
			}
			path, k := nw.feedPath(f.bus)
			if k < 0 {
				continue
			}
			d := nw.nodes[path[k]]
			if delay := d.feeder.cfg.TripDelay; delay > 0 {
				if !d.tripPending {
					d.tripPending = true
					gen := d.gen
					after(now.Add(delay), func(now time.Time) {
						if d.gen == gen {
							d.tripPending = false
							nw.delayedTrip(d, now, after)
						}
					})
				}
				continue
			}
			nw.trip(d, path[:k], now, after)
			tripped = true
			break
		}
		if !tripped {
			return
		}
	}
}

// delayedTrip trips d when its trip delay has passed, if a fault it
// protects is still there.
func (nw *network) delayedTrip(d *simNode, now time.Time, after scheduler) {
	nw.energize()
	for _, f := range nw.faults {
		if !nw.live[f.bus] {
			continue
		}
		if path, k := nw.feedPath(f.bus); k >= 0 && path[k] == d.g {
			nw.trip(d, path[:k], now, after)
			break
		}
	}
	nw.protect(now, after)
}

// trip opens protective device d for a fault below the devices in below.
func (nw *network) trip(d *simNode, below []int, now time.Time, after scheduler) {
	d.closed = false
	d.trips++
	d.bump()
	for _, g := range below {
		s := nw.nodes[g]
		if s.node.Kind != topology.KindSectionalizer || !s.closed {
			continue
		}
		s.count++
		if s.count >= s.cfg.Counts {
			s.closed, s.lockout = false, true
			s.bump()
			continue
		}
		gen, count := s.gen, s.count
		after(now.Add(s.cfg.Reclose.Reset), func(time.Time) {
			if s.gen == gen && s.count == count {
				s.count = 0
			}
		})
	}
	iv := d.cfg.Reclose.Intervals
	if d.shots >= len(iv) {
		d.lockout = true
		return
	}
	gen := d.gen
	after(now.Add(iv[d.shots]), func(now time.Time) {
		if d.gen == gen {
			nw.reclose(d, now, after)
		}
	})
}

func (nw *network) reclose(d *simNode, now time.Time, after scheduler) {
	d.closed = true
	d.shots++
	d.bump()
	gen := d.gen
	after(now.Add(d.cfg.Reclose.Reset), func(time.Time) {
		if d.gen == gen {
			d.shots = 0
		}
	})
	nw.protect(now, after)
}

// operate opens or closes node n by command. A close resets lockout, the
// shot counter and a sectionalizer's count; either cancels a pending
// reclose. Neither counts as a trip.
func (nw *network) operate(n *simNode, closeIt bool, now time.Time, after scheduler) error {
	if !n.switching() {
		return fmt.Errorf("%s is a %s: only breakers, reclosers, sectionalizers and switches open and close", n.id(), n.node.Kind)
	}
	n.closed = closeIt
	if closeIt {
		n.lockout, n.shots, n.count = false, 0, 0
	}
	n.bump()
	nw.protect(now, after)
	return nil
}
