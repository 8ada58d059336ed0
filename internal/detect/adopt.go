package detect

import "time"

// A configuration reload replaces a shard's Detector with one built for the
// new device table. Retire ends what the old one cannot hand on; Adopt moves
// the rest into the new one. Device indexes may differ between the two
// tables: Move says where each old device went.

// Move says what becomes of one device of the old Detector at a reload.
type Move struct {
	// Present: the device (same ID) is in the new configuration, at Index.
	// A cause naming it is remapped to Index.
	Present bool
	Index   uint32
	// Keep: its detection-relevant configuration is unchanged, so its whole
	// state moves (events in progress with their IDs and starts, band
	// persistence, energization, last readings, comms, switching, counters).
	// Present without Keep moves only its event counter, so that its new
	// events never reuse an ID.
	Keep bool
}

// Retire ends every event in progress of the devices for which gone
// returns true, at t (not before each event's start), with
// FlagReconfigured: a device that leaves the configuration, or whose
// detection settings changed, must not leave events (and their alerts)
// open forever. The ends go to emit like any other, with the old indexes.
// Call it on the old Detector before Adopt.
func (d *Detector) Retire(gone func(idx uint32) bool, t int64) {
	t = max(t, d.lastTick)
	for k := range d.devs {
		dev := &d.devs[k]
		if !gone(dev.info.Index) {
			continue
		}
		for _, tr := range dev.tracks() {
			if !tr.open {
				continue
			}
			if tr.ev.Kind == KindDeEnergized {
				tr.ev.Category = d.p.class1366(time.Duration(max(0, t-tr.ev.Start)))
			}
			d.end(tr, max(t, dev.lastT), 0, FlagReconfigured)
		}
		for p := range dev.band {
			for r := range dev.band[p] {
				dev.band[p][r].pending = false
			}
		}
	}
}

// Adopt takes over from old, a Detector of the previous configuration, the
// state of every device that move reports Present and that belongs to d
// (call it once per old Detector: a feeder may change shards). Every index
// held inside (events' Device and CauseDevice, the device an energization
// cause names) is remapped; event IDs and starts are kept, so an event in
// progress goes on as one event. A cause naming a device that is not in d
// is dropped (the next evaluation decides it again). Call it before d
// processes anything; old is not used afterwards.
func (d *Detector) Adopt(old *Detector, move func(oldIdx uint32) Move) {
	d.lastTick = max(d.lastTick, old.lastTick)
	remap := func(oldIdx uint32) (uint32, bool) {
		m := move(oldIdx)
		return m.Index, m.Present
	}
	for ok := range old.devs {
		od := &old.devs[ok]
		m := move(od.info.Index)
		if !m.Present {
			continue
		}
		k := d.local(int(m.Index))
		if k < 0 {
			continue
		}
		nd := &d.devs[k]
		if !m.Keep {
			nd.counter = max(nd.counter, od.counter)
			continue
		}
		// Everything moves but what New derived from the new DeviceInfo
		// (which is the same but for indexes) and the local structure.
		shape := *nd
		*nd = *od
		nd.info, nd.roles, nd.interval, nd.phases = shape.info, shape.roles, shape.interval, shape.phases
		nd.hasTrip, nd.hasShot, nd.hasLock = shape.hasTrip, shape.hasShot, shape.hasLock
		nd.parent, nd.children, nd.ties, nd.tieTo = shape.parent, shape.children, shape.ties, shape.tieTo
		nd.dirty = false
		nd.en.causeDev = -1
		if od.en.causeDev >= 0 {
			if idx, ok := remap(old.devs[od.en.causeDev].info.Index); ok {
				nd.en.causeDev = d.local(int(idx))
			}
		}
		if nd.en.causeDev < 0 && nd.en.cause.Upstream() {
			// The device it named is elsewhere now: the cause is its own
			// (what it reads) until the next evaluation says more.
			nd.en.cause = CauseNoVoltage
		}
		for _, tr := range nd.tracks() {
			tr.ev.Device = m.Index
			if tr.ev.Cause.Upstream() {
				if idx, ok := remap(tr.ev.CauseDevice); ok && d.local(int(idx)) >= 0 {
					tr.ev.CauseDevice = idx
				} else {
					tr.ev.Cause, tr.ev.CauseDevice = CauseNoVoltage, 0
				}
			}
		}
	}
}
