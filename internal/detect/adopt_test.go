package detect

import (
	"testing"
	"time"
)

// reloadRig is an old Detector with a band excursion in progress on D1, an
// interruption (so de_energized) in progress on D2 below it, and a comm_lost
// device D3; then the new table of a reload: D0 changed (its interval),
// D1 and D2 kept at other indexes, D3 removed, D9 added.
func reloadRig(t *testing.T) (old *rig, newInfos []DeviceInfo, move func(uint32) Move) {
	t.Helper()
	p := DefaultParams()
	old = newRig(t, p,
		devInfo(0, -1, time.Second, rolesMeter3),
		devInfo(1, 0, time.Second, rolesMeter3),
		devInfo(2, 1, time.Second, rolesMeter3),
		devInfo(3, -1, time.Second, rolesMeter1),
	)
	for s := time.Duration(0); s < 70*time.Second; s += time.Second {
		old.poll(0, s, 1, 1, 1)
		old.poll(1, s, 0.93, 0.93, 0.93)
		v := 1.0
		if s >= 10*time.Second {
			v = 0
		}
		old.poll(2, s, v, v, v)
		if s < 5*time.Second {
			old.poll(3, s, 1)
		} else {
			old.fail(3, s)
		}
	}
	old.events = old.events[:0]

	d0 := devInfo(2, -1, 2*time.Second, rolesMeter3) // changed: its interval
	d0.ID = "D0"
	d1 := devInfo(5, 2, time.Second, rolesMeter3)
	d1.ID = "D1"
	d2 := devInfo(4, 5, time.Second, rolesMeter3)
	d2.ID = "D2"
	d9 := devInfo(0, -1, time.Second, rolesMeter1)
	d9.ID = "D9"
	newInfos = []DeviceInfo{d9, d0, d2, d1}
	move = func(i uint32) Move {
		switch i {
		case 0:
			return Move{Present: true, Index: 2}
		case 1:
			return Move{Present: true, Index: 5, Keep: true}
		case 2:
			return Move{Present: true, Index: 4, Keep: true}
		}
		return Move{}
	}
	return old, newInfos, move
}

// TestAdoptKeepsEventsInProgress: after a reload that moves D1 and D2 to new
// indexes, their events in progress go on (same ID and start, the new
// index, no end), their energization and band state are what they were,
// and good readings end the same events; the changed D0 starts fresh but
// keeps counting event IDs; the added D9 is detected under its index.
func TestAdoptKeepsEventsInProgress(t *testing.T) {
	old, infos, move := reloadRig(t)
	openBefore := map[uint64]Event{}
	for _, ev := range old.d.OpenEvents() {
		openBefore[ev.ID] = ev
	}
	old.d.Retire(func(i uint32) bool { m := move(i); return !m.Present || !m.Keep }, at(70*time.Second))
	// D0 had nothing open; D3's comms loss ends, flagged.
	equalLines(t, old.lines(), []string{
		"d3#1 comm_lost end @5s..1m10s warning cause=poll_failures prec=1s flags=reconfigured",
	})

	nr := newRig(t, DefaultParams(), infos...)
	nr.d.Adopt(old.d, move)
	var got []string
	for _, ev := range nr.d.OpenEvents() {
		was, ok := openBefore[ev.ID]
		if !ok || was.ID != ev.ID || was.Start != ev.Start || was.Kind != ev.Kind {
			t.Errorf("open after adopt: %s, not as before (%s)", fmtEvent(ev), fmtEvent(was))
		}
		got = append(got, fmtEvent(ev))
	}
	equalLines(t, got, []string{
		"d4#3 de_energized start @10s ABC critical cause=no_voltage prec=1s",
		"d4#2 interruption start @10s ABC critical prec=1s",
		"d4#1 sag start @10s ABC warning prec=1s flags=interruption",
		"d5#1 band start @0s worst=0.93(111.6V) A range_a warning prec=1s",
		"d5#2 band start @0s worst=0.93(111.6V) B range_a warning prec=1s",
		"d5#3 band start @0s worst=0.93(111.6V) C range_a warning prec=1s",
	})
	for _, ev := range nr.d.OpenEvents() {
		if ev.ID>>32 != uint64(map[uint32]uint32{4: 2, 5: 1}[ev.Device]) {
			t.Errorf("event %s: ID %x lost the index it started under", fmtEvent(ev), ev.ID)
		}
	}
	st, _ := nr.d.State(5)
	if st.Energy != EnergyEnergized || st.Band != [3]BandState{BandOutsideA, BandOutsideA, BandOutsideA} || st.Comm != CommOK {
		t.Errorf("D1 after adopt: %+v", st)
	}
	st, _ = nr.d.State(4)
	if st.Energy != EnergyDeEnergized || !st.Interruption || st.DeadSince != at(10*time.Second) {
		t.Errorf("D2 after adopt: %+v", st)
	}
	st, _ = nr.d.State(2)
	if st.Comm != CommUnknown || st.Energy != EnergyUnknown {
		t.Errorf("changed D0 after adopt, want fresh: %+v", st)
	}

	// The same events end on evidence, under the new indexes.
	nr.poll(2, 70*time.Second, 1, 1, 1)
	nr.poll(5, 70*time.Second, 1, 1, 1)
	nr.poll(4, 70*time.Second, 1, 1, 1)
	nr.poll(0, 70*time.Second, 1)
	equalLines(t, nr.lines(), []string{
		"d5#1 band end @0s..1m10s worst=0.93(111.6V) A range_a warning prec=1s",
		"d5#2 band end @0s..1m10s worst=0.93(111.6V) B range_a warning prec=1s",
		"d5#3 band end @0s..1m10s worst=0.93(111.6V) C range_a warning prec=1s",
		"d4#1 sag end @10s..1m10s ABC temporary_sag warning prec=1s flags=interruption",
		"d4#2 interruption end @10s..1m10s ABC temporary_interruption critical prec=1s",
		"d4#3 de_energized end @10s..1m10s ABC momentary critical cause=no_voltage prec=1s",
	})
	// A new event of a kept device continues its counter under its new
	// index; so does the changed D0's.
	nr.poll(5, 71*time.Second, 0.5, 1, 1)
	nr.poll(2, 72*time.Second, 0.5, 1, 1)
	nr.events = nr.events[:0]
	found := 0
	for _, ev := range nr.d.OpenEvents() {
		found++
		switch ev.Device {
		case 5:
			if ev.ID != 5<<32|4 {
				t.Errorf("D1's next event %s: ID %x, want %x", fmtEvent(ev), ev.ID, uint64(5<<32|4))
			}
		case 2:
			if uint32(ev.ID) != 1 || ev.ID>>32 != 2 {
				// D0 never used its counter in the old run.
				t.Errorf("D0's first event %s: ID %x", fmtEvent(ev), ev.ID)
			}
		}
	}
	if found != 2 {
		t.Errorf("%d events open after the sags of D1 and D0, want 2", found)
	}
	if s := nr.d.Stats(); s.Foreign != 0 {
		t.Errorf("foreign samples after adopt: %d", s.Foreign)
	}
}

// TestAdoptRemapsUpstreamCause: a de_energized device explained by an open
// breaker above it keeps its event, and the cause names the breaker's new
// index.
func TestAdoptRemapsUpstreamCause(t *testing.T) {
	p := DefaultParams()
	old := newRig(t, p, devInfo(0, -1, time.Second, rolesBreaker), devInfo(1, 0, time.Second, rolesMeter3))
	old.poll(0, 0, 1)
	old.poll(1, 0, 1, 1, 1)
	old.poll(0, time.Second, 0)
	old.poll(1, time.Second, 0, 0, 0)
	old.events = old.events[:0]
	brk := devInfo(7, -1, time.Second, rolesBreaker)
	brk.ID = "D0"
	m := devInfo(3, 7, time.Second, rolesMeter3)
	m.ID = "D1"
	nr := newRig(t, p, m, brk)
	nr.d.Adopt(old.d, func(i uint32) Move { return Move{Present: true, Index: map[uint32]uint32{0: 7, 1: 3}[i], Keep: true} })
	st, _ := nr.d.State(3)
	if st.Energy != EnergyDeEnergized || st.Cause != CauseUpstreamOpen || st.CauseDevice != 7 {
		t.Fatalf("meter after adopt: energy %s cause %s from %d, want de_energized upstream_open from 7", st.Energy, st.Cause, st.CauseDevice)
	}
	nr.poll(7, 2*time.Second, 1)
	nr.poll(3, 2*time.Second, 1, 1, 1)
	equalLines(t, nr.lines(), []string{
		// The breaker's counter went on: its trip and sequence were 1 and 2.
		"d7#3 reclose instant @2s info prec=1s",
		"d3#1 sag end @1s..2s ABC momentary_sag warning prec=1s flags=interruption",
		"d3#2 interruption end @1s..2s ABC momentary_interruption critical prec=1s",
		"d3#3 de_energized end @1s..2s ABC momentary critical cause=upstream_open from=d7 prec=1s",
	})
}
