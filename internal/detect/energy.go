package detect

import "time"

// energy is what detection concludes about a device's energization.
type energy struct {
	state EnergyState
	// cause and causeDev explain a de-energized state: CauseNoVoltage
	// (the device's own reading, nothing upstream explains it), or an
	// upstream cause with the local index of the device it points at.
	cause    Cause
	causeDev int32 // local index, -1 for none
}

// evidence is the device's own voltage as evidence of its energization:
// EnergyUnknown when it has no voltage points, has never read them, is
// comm_lost, or has not read them for Params.CommLossPolls polls.
func (d *Detector) evidence(dev *device) EnergyState {
	switch {
	case dev.phases == 0 || dev.lastVoltT == 0 || dev.comm.open || dev.voltMiss >= d.p.CommLossPolls:
		return EnergyUnknown
	case dev.intr.open:
		return EnergyDeEnergized
	}
	return EnergyEnergized
}

// feed is what the topology delivers to device k's input. The source of a
// feeder (above its first device) is taken as energized. Below a device the
// feed is dead when that device is de-energized (the cause is passed on, so
// it names the most upstream device at fault) or open (a device's own
// breaker does not de-energize the device itself: where its PTs sit is
// unknown), live when it is energized and not open, and unknown otherwise.
func (d *Detector) feed(dev *device) energy {
	fd := d.radialFeed(dev)
	if fd.state != EnergyEnergized {
		// A closed, energized tie switch back-feeds the device.
		for _, t := range dev.ties {
			if tie := &d.devs[t]; tie.breaker == BreakerClosed && !tie.lockout.open && tie.en.state == EnergyEnergized {
				return energy{state: EnergyEnergized, causeDev: -1}
			}
		}
	}
	return fd
}

// radialFeed is feed from the device's own feeder, without ties.
func (d *Detector) radialFeed(dev *device) energy {
	p := dev.parent
	if p < 0 {
		return energy{state: EnergyEnergized, causeDev: -1}
	}
	up := &d.devs[p]
	switch {
	case up.en.state == EnergyDeEnergized && up.en.cause.Upstream():
		return energy{state: EnergyDeEnergized, cause: up.en.cause, causeDev: up.en.causeDev}
	case d.effectivelyOpen(up):
		return energy{state: EnergyDeEnergized, cause: CauseUpstreamOpen, causeDev: p}
	case up.en.state == EnergyDeEnergized:
		return energy{state: EnergyDeEnergized, cause: CauseUpstreamDeEnergized, causeDev: p}
	case up.en.state == EnergyEnergized:
		return energy{state: EnergyEnergized, causeDev: -1}
	}
	return energy{causeDev: -1}
}

// energize re-decides device k's energization at t and, when what its
// children are fed changed (or force: the device opened or closed), theirs.
//
// The rule: the device's own good voltage is the strongest evidence and
// decides whenever it exists; the topology explains a loss of voltage
// (the cause) and infers the state of a device that has no such evidence,
// and never overrules a device that reports voltage. A device with no
// evidence and no inference keeps what it had: a de_energized event ends
// only on evidence that it is over. A comm_lost device is never inferred
// energized.
func (d *Detector) energize(k int32, t int64, force bool) {
	d.energizeFrom(k, t, force, true)
}

// energizeFrom is energize; up says whether a change also re-decides the
// devices above.
func (d *Detector) energizeFrom(k int32, t int64, force, up bool) {
	dev := &d.devs[k]
	prev := dev.en
	fd := d.feed(dev)
	next := prev
	switch d.evidence(dev) {
	case EnergyEnergized:
		next = energy{state: EnergyEnergized, causeDev: -1}
	case EnergyDeEnergized:
		next = energy{state: EnergyDeEnergized, cause: CauseNoVoltage, causeDev: -1}
		switch {
		case fd.state == EnergyDeEnergized:
			next = fd
		case dev.isOpen():
			// Its own switch is open and its PTs are on the load side:
			// the device names itself.
			next = energy{state: EnergyDeEnergized, cause: CauseUpstreamOpen, causeDev: k}
		case prev.state == EnergyDeEnergized && prev.cause.Upstream():
			// The upstream device came back before this one's next
			// reading: the outage keeps the cause that explained it.
			next = prev
		}
	default:
		switch {
		case fd.state == EnergyDeEnergized:
			next = fd
		case fd.state == EnergyEnergized && dev.phases == 0 && !dev.comm.open:
			next = fd
		case !dev.comm.open && d.liveBelow(dev):
			// A device below reads voltage through closed switches: the
			// path up to here is live, whatever was last seen above.
			next = energy{state: EnergyEnergized, causeDev: -1}
		case prev.state == EnergyDeEnergized:
			// Ends only on evidence.
		default:
			next = energy{causeDev: -1}
		}
	}
	dev.en = next
	d.energyEvent(dev, t)
	if next == prev && !force {
		return
	}
	if !dev.dirty {
		dev.dirty = true
		d.changed = append(d.changed, k)
	}
	for _, c := range dev.children {
		d.energizeFrom(c, t, false, false)
	}
	for _, c := range dev.tieTo {
		d.energizeFrom(c, t, false, false)
	}
	if !up {
		return
	}
	// Evidence travels up too: a device above with nothing of its own to
	// go by may be proven live (or no longer) by this one.
	for a := dev.parent; a >= 0 && d.evidence(&d.devs[a]) == EnergyUnknown; a = d.devs[a].parent {
		d.energizeFrom(a, t, true, false)
	}
}

// effectivelyOpen reports whether dev cuts the feeder below it: its last
// known state is open, and it is not a comm_lost device that a live device
// below it proves closed.
func (d *Detector) effectivelyOpen(dev *device) bool {
	return dev.isOpen() && !(dev.comm.open && d.liveBelow(dev))
}

// liveBelow reports whether a device below dev, through devices that are
// not open, reads voltage of its own.
func (d *Detector) liveBelow(dev *device) bool {
	for _, c := range dev.children {
		cd := &d.devs[c]
		if d.evidence(cd) == EnergyEnergized {
			return true
		}
		if !cd.isOpen() && d.liveBelow(cd) {
			return true
		}
	}
	return false
}

// energyEvent opens, revises or closes the device's de_energized event to
// match dev.en.
func (d *Detector) energyEvent(dev *device, t int64) {
	dead := dev.en.state == EnergyDeEnergized
	switch {
	case dead && dev.dead.open:
		// Later evidence within the same outage revises the cause; the
		// end line carries the final one.
		dev.dead.ev.Cause, dev.dead.ev.CauseDevice = dev.en.cause, d.index(dev.en.causeDev)
		if d.evidence(dev) == EnergyDeEnergized {
			dev.dead.ev.Flags &^= FlagInferred
		}
	case dead:
		ev := Event{Kind: KindDeEnergized, Severity: SeverityCritical, Start: t,
			DurationPrecision: time.Duration(dev.interval),
			Cause:             dev.en.cause, CauseDevice: d.index(dev.en.causeDev)}
		if d.evidence(dev) == EnergyDeEnergized {
			ev.Start, ev.Phases = dev.intr.ev.Start, dev.phases
			ev.DurationPrecision, ev.Flags = dev.intr.ev.DurationPrecision, dev.intr.ev.Flags&FlagGap
		} else {
			ev.Flags = FlagInferred
		}
		d.start(dev, &dev.dead, ev)
	case dev.dead.open:
		dev.dead.ev.Category = d.p.class1366(time.Duration(t - dev.dead.ev.Start))
		d.end(&dev.dead, t, 0, 0)
	}
}

// index is the model index of local device k, 0 for none.
func (d *Detector) index(k int32) uint32 {
	if k < 0 {
		return 0
	}
	return d.devs[k].info.Index
}
