package detect

import (
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// interesting voltages sit on and around every threshold.
var interesting = []float64{0, 0.05, 0.099, 0.1, 0.101, 0.119, 0.12, 0.121, 0.5, 0.8, 0.85, 0.899, 0.9, 0.901,
	0.915, 0.92, 0.921, 0.9167, 0.9217, 0.94, 0.949, 0.95, 0.951, 0.955, 0.96, 1, 1.04, 1.045, 1.05, 1.055,
	1.0583, 1.06, 1.079, 1.08, 1.099, 1.1, 1.101, 1.15, 1.2, 1.3}

type eventKey struct {
	dev    uint32
	kind   Kind
	phases Phases   // band events only
	cat    Category // band events only
}

func keyOf(e *Event) eventKey {
	k := eventKey{dev: e.Device, kind: e.Kind}
	if e.Kind == KindBand {
		k.phases, k.cat = e.Phases, e.Category
	}
	return k
}

// checker verifies the event stream as it is emitted.
type checker struct {
	t        *rapid.T
	open     map[uint64]Event
	openKeys map[eventKey]uint64
	seen     map[uint64]bool
	starts   int
}

func newChecker(t *rapid.T) *checker {
	return &checker{t: t, open: map[uint64]Event{}, openKeys: map[eventKey]uint64{}, seen: map[uint64]bool{}}
}

func (c *checker) event(e *Event) {
	t := c.t
	if e.ID>>32 != uint64(e.Device) {
		t.Fatalf("id %x does not carry device %d", e.ID, e.Device)
	}
	if e.DurationPrecision < time.Second {
		t.Fatalf("precision below the poll interval: %s", fmtEvent(*e))
	}
	if e.Duration() < 0 {
		t.Fatalf("negative duration: %s", fmtEvent(*e))
	}
	switch e.Kind {
	case KindSag:
		if e.Worst >= 0.9 || math.Abs(e.WorstVolts-e.Worst*120) > 1e-9 {
			t.Fatalf("sag worst: %s", fmtEvent(*e))
		}
	case KindSwell:
		if e.Worst <= 1.1 {
			t.Fatalf("swell worst: %s", fmtEvent(*e))
		}
	case KindInterruption:
		if e.Worst >= 0.1 {
			t.Fatalf("interruption worst: %s", fmtEvent(*e))
		}
	case KindBand:
		if e.Phases != PhaseA && e.Phases != PhaseB && e.Phases != PhaseC {
			t.Fatalf("band phases: %s", fmtEvent(*e))
		}
	}
	switch e.Stage {
	case StageInstant:
		if e.Start != e.End || c.seen[e.ID] {
			t.Fatalf("bad instant: %s", fmtEvent(*e))
		}
		c.seen[e.ID] = true
	case StageStart:
		if c.seen[e.ID] {
			t.Fatalf("id reused: %s", fmtEvent(*e))
		}
		c.seen[e.ID] = true
		k := keyOf(e)
		if id, ok := c.openKeys[k]; ok {
			t.Fatalf("overlaps open event %x: %s", id, fmtEvent(*e))
		}
		switch e.Kind {
		case KindSag, KindSwell, KindInterruption, KindDeEnergized, KindRecloserSequence:
			if e.Category != CategoryNone {
				t.Fatalf("category before the end: %s", fmtEvent(*e))
			}
		}
		c.open[e.ID] = *e
		c.openKeys[k] = e.ID
		c.starts++
	case StageEnd:
		s, ok := c.open[e.ID]
		if !ok {
			t.Fatalf("end without an open start: %s", fmtEvent(*e))
		}
		if s.Kind != e.Kind || s.Device != e.Device || s.Start != e.Start || e.End < e.Start {
			t.Fatalf("end %s does not match start %s", fmtEvent(*e), fmtEvent(s))
		}
		if e.Kind != KindCommLost && e.Kind != KindBand && e.Category == CategoryNone {
			t.Fatalf("no category at the end: %s", fmtEvent(*e))
		}
		delete(c.open, e.ID)
		delete(c.openKeys, keyOf(e))
	}
}

// state checks the snapshot against the open events.
func (c *checker) state(d *Detector) {
	for _, st := range d.Snapshot() {
		has := func(k Kind) bool { _, ok := c.openKeys[eventKey{dev: st.Index, kind: k}]; return ok }
		if st.Sag != has(KindSag) || st.Swell != has(KindSwell) || st.Interruption != has(KindInterruption) ||
			(st.Comm == CommLost) != has(KindCommLost) || (st.Energy == EnergyDeEnergized) != has(KindDeEnergized) ||
			st.Lockout != has(KindLockout) || (st.SequenceShots > 0) != has(KindRecloserSequence) {
			c.t.Fatalf("snapshot %+v disagrees with open events %v", st, c.open)
		}
	}
}

// TestProperties feeds random polls (voltages around every threshold,
// failures, partial polls, NaN, gaps, breaker and counter changes, ticks)
// to a small feeder, then a long recovery, and checks the event stream.
func TestProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		c := newChecker(rt)
		s := time.Second
		infos := []DeviceInfo{
			devInfo(0, -1, s, rolesRecloser),
			devInfo(1, 0, s, rolesMeter3),
			devInfo(2, 1, s, rolesMeter1),
		}
		r := &rig{infos: infos}
		d, err := New(DefaultParams(), infos, c.event)
		if err != nil {
			rt.Fatal(err)
		}
		r.d = d
		voltage := rapid.OneOf(rapid.SampledFrom(interesting), rapid.Float64Range(0, 1.5),
			rapid.Just(missing))
		var now time.Duration
		trips := 0.0
		steps := rapid.IntRange(1, 150).Draw(rt, "steps")
		for range steps {
			now += rapid.SampledFrom([]time.Duration{s, s, s, s, 2 * s, 3 * s, 7 * s, 15 * s, 70 * s}).Draw(rt, "dt")
			for dev := uint32(0); dev < 3; dev++ {
				switch rapid.IntRange(0, 9).Draw(rt, "poll") {
				case 0:
					continue // no poll at all
				case 1:
					r.fail(dev, now)
					continue
				}
				var vals []float64
				if dev == 0 {
					switch rapid.IntRange(0, 5).Draw(rt, "counter") {
					case 0:
						trips = 0
					case 1, 2:
						trips += float64(rapid.IntRange(1, 3).Draw(rt, "trips"))
					}
					vals = append(vals, float64(rapid.IntRange(0, 1).Draw(rt, "closed")),
						float64(rapid.IntRange(0, 4).Draw(rt, "lockout")/4), trips)
				}
				for range []int{3, 3, 1}[dev] {
					vals = append(vals, voltage.Draw(rt, "v"))
				}
				r.poll(dev, now, vals...)
			}
			if rapid.IntRange(0, 3).Draw(rt, "tick") == 0 {
				d.Tick(at(now + time.Duration(rapid.Int64Range(0, int64(20*s)).Draw(rt, "tickAt"))))
			}
			c.state(d)
		}
		// A long recovery: everything closed, answering and nominal.
		for range 700 {
			now += s
			r.poll(0, now, 1, 0, trips, 1, 1, 1)
			r.poll(1, now, 1, 1, 1)
			r.poll(2, now, 1)
		}
		d.Tick(at(now))
		c.state(d)
		if len(c.open) != 0 {
			rt.Fatalf("events still open after recovery: %v", c.open)
		}
		if got := d.OpenEvents(); len(got) != 0 {
			rt.Fatalf("OpenEvents after recovery: %v", got)
		}
	})
}
