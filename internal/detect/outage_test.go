package detect

import (
	"slices"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/profile"
)

// The tests of this file pin the outage-truth rules, one per item of the
// issue that found them wrong (issue 7): a device's own good voltage beats
// what the topology last implied.

// rolesRecloserCounters: breaker, lockout, trip count, shot count.
var rolesRecloserCounters = []profile.Role{profile.RoleBreakerClosed, profile.RoleLockout,
	profile.RoleTripCount, profile.RoleShotCount}

// Item 1: a lockout read once a second (recloses faster than the polls)
// reads trip, reclose, trip, reclose, trip, lockout; when a tie switch feeds
// the meter below the locked-out recloser, the meter's own voltage ends its
// outage at once.
func TestLockoutThenTieSwitch(t *testing.T) {
	s := time.Second
	r := newRig(t, DefaultParams(),
		devInfo(0, -1, s, rolesRecloserCounters),
		devInfo(1, 0, s, rolesMeter3),
	)
	rec := func(sec int, brk, lock, trips, shots float64) {
		r.poll(0, time.Duration(sec)*s, brk, lock, trips, shots)
	}
	mtr := func(sec int, pu float64) { r.poll(1, time.Duration(sec)*s+500*time.Millisecond, pu, pu, pu) }
	for sec := range 30 {
		rec(sec, 1, 0, 0, 0)
		mtr(sec, 1)
	}
	// 30 s: trip. 32 s: first reclose, trips into the fault at once. 37 s:
	// second reclose, trip, lockout. The polls see open, open, locked out.
	for sec := 30; sec < 240; sec++ {
		switch {
		case sec < 33:
			rec(sec, 0, 0, 1, 0)
		case sec < 38:
			rec(sec, 0, 0, 2, 1)
		default:
			rec(sec, 0, 1, 3, 2)
		}
		mtr(sec, 0)
	}
	// 4 min: the tie switch closes; the recloser stays locked out.
	for sec := 240; sec < 250; sec++ {
		rec(sec, 0, 1, 3, 2)
		mtr(sec, 0.995)
	}
	equalLines(t, r.lines(), []string{
		"d0#1 trip instant @30s info shots=1 prec=1s",
		"d0#2 recloser_sequence start @30s warning shots=1 prec=1s",
		"d1#1 sag start @30.5s ABC warning prec=1s",
		"d1#2 interruption start @30.5s ABC critical prec=1s",
		"d1#3 de_energized start @30.5s ABC critical cause=upstream_open from=d0 prec=1s",
		"d0#3 reclose instant @32.5s info prec=1s flags=inferred",
		"d0#4 trip instant @33s info shots=1 prec=1s flags=inferred",
		"d0#5 reclose instant @37.5s info prec=1s flags=inferred",
		"d0#6 trip instant @38s info shots=1 prec=1s flags=inferred",
		"d0#2 recloser_sequence end @30s..38s sustained warning shots=3 outcome=lockout prec=1s flags=inferred",
		"d0#7 lockout start @38s sustained critical prec=1s",
		"d1#1 sag end @30.5s..4m0.5s ABC long_duration_sag warning prec=1s flags=interruption",
		"d1#2 interruption end @30.5s..4m0.5s ABC sustained_interruption critical prec=1s",
		"d1#3 de_energized end @30.5s..4m0.5s ABC momentary critical cause=upstream_open from=d0 prec=1s",
	})
	st := r.d.Snapshot()
	if st[1].Energy != EnergyEnergized || st[0].Breaker != BreakerOpen || !st[0].Lockout {
		t.Fatalf("snapshot: meter %v, recloser %v lockout %v", st[1].Energy, st[0].Breaker, st[0].Lockout)
	}
}

// Item 2: the recloser opens, its radio goes silent, it is closed in the
// field: the meter's full voltage ends the outage, for it and for the
// device below it that measures no voltage.
func TestSilentRecloserClosedInTheField(t *testing.T) {
	s := time.Second
	r := newRig(t, DefaultParams(),
		devInfo(0, -1, s, rolesBL),
		devInfo(1, 0, s, rolesMeter3),
		devInfo(2, 1, s, rolesCurrent),
	)
	for sec := range 60 {
		when := time.Duration(sec) * s
		switch {
		case sec < 10:
			r.poll(0, when, 1, 0)
		case sec < 12:
			r.poll(0, when, 0, 0)
		default:
			r.fail(0, when)
		}
		pu := 1.0
		if sec >= 10 && sec < 50 {
			pu = 0
		}
		r.poll(1, when, pu, pu, pu)
		r.poll(2, when, 40)
	}
	got := r.lines()
	want := []string{
		"d0#1 trip instant @10s info shots=1 prec=1s",
		"d0#2 recloser_sequence start @10s warning shots=1 prec=1s",
		"d1#1 sag start @10s ABC warning prec=1s",
		"d1#2 interruption start @10s ABC critical prec=1s",
		"d1#3 de_energized start @10s ABC critical cause=upstream_open from=d0 prec=1s",
		"d2#1 de_energized start @10s critical cause=upstream_open from=d0 prec=1s flags=inferred",
		"d0#3 comm_lost start @12s warning cause=poll_failures prec=1s",
		"d1#1 sag end @10s..50s ABC temporary_sag warning prec=1s flags=interruption",
		"d1#2 interruption end @10s..50s ABC temporary_interruption critical prec=1s",
		"d1#3 de_energized end @10s..50s ABC momentary critical cause=upstream_open from=d0 prec=1s",
		"d2#1 de_energized end @10s..50s momentary critical cause=upstream_open from=d0 prec=1s flags=inferred",
	}
	equalLines(t, got, want)
	st := r.d.Snapshot()
	if st[1].Energy != EnergyEnergized || st[2].Energy != EnergyEnergized || st[0].Energy != EnergyUnknown {
		t.Fatalf("energy: recloser %v, meter %v, below %v", st[0].Energy, st[1].Energy, st[2].Energy)
	}
}

// Item 3: the meter is polled 0.7 s before the recloser. Its outage starts
// on its own reading (no_voltage), is blamed on the recloser once the trip
// is seen, and ends on its own voltage, not at the recloser's next poll.
func TestCauseRevisedByLaterEvidence(t *testing.T) {
	s := time.Second
	r := newRig(t, DefaultParams(),
		devInfo(0, -1, s, rolesBL),
		devInfo(1, 0, s, rolesMeter3),
	)
	for sec := range 30 {
		when := time.Duration(sec) * s
		pu := 1.0
		if sec >= 10 && sec < 20 {
			pu = 0
		}
		r.poll(1, when, pu, pu, pu)
		brk := 1.0
		if sec >= 9 && sec < 20 {
			brk = 0 // tripped at 9.9 s, closed at 19.9 s
		}
		r.poll(0, when+700*time.Millisecond, brk, 0)
	}
	equalLines(t, r.lines(), []string{
		"d0#1 trip instant @9.7s info shots=1 prec=1s",
		"d0#2 recloser_sequence start @9.7s warning shots=1 prec=1s",
		"d1#1 sag start @10s ABC warning prec=1s",
		"d1#2 interruption start @10s ABC critical prec=1s",
		// Started while the open recloser already explains it.
		"d1#3 de_energized start @10s ABC critical cause=upstream_open from=d0 prec=1s",
		"d1#1 sag end @10s..20s ABC temporary_sag warning prec=1s flags=interruption",
		"d1#2 interruption end @10s..20s ABC temporary_interruption critical prec=1s",
		"d1#3 de_energized end @10s..20s ABC momentary critical cause=upstream_open from=d0 prec=1s",
		"d0#3 reclose instant @20.7s info prec=1s",
	})

	// The other order: the meter reads 0 V before the trip is seen.
	r = newRig(t, DefaultParams(),
		devInfo(0, -1, s, rolesBL),
		devInfo(1, 0, s, rolesMeter3),
	)
	for sec := range 30 {
		when := time.Duration(sec) * s
		pu := 1.0
		if sec >= 10 && sec < 20 {
			pu = 0
		}
		r.poll(1, when, pu, pu, pu)
		brk := 1.0
		if sec >= 10 && sec < 20 {
			brk = 0
		}
		if sec == 10 {
			var open []Event
			for _, e := range r.d.OpenEvents() {
				if e.Kind == KindDeEnergized {
					open = append(open, e)
				}
			}
			if len(open) != 1 || open[0].Cause != CauseNoVoltage {
				t.Fatalf("before the trip is seen: %v, want one de_energized with cause no_voltage", open)
			}
		}
		r.poll(0, when+700*time.Millisecond, brk, 0)
	}
	got := r.lines()
	want := []string{
		"d1#1 sag start @10s ABC warning prec=1s",
		"d1#2 interruption start @10s ABC critical prec=1s",
		"d1#3 de_energized start @10s ABC critical cause=no_voltage prec=1s",
		"d0#1 trip instant @10.7s info shots=1 prec=1s",
		"d0#2 recloser_sequence start @10.7s warning shots=1 prec=1s",
		"d1#1 sag end @10s..20s ABC temporary_sag warning prec=1s flags=interruption",
		"d1#2 interruption end @10s..20s ABC temporary_interruption critical prec=1s",
		// The end line carries the revised cause.
		"d1#3 de_energized end @10s..20s ABC momentary critical cause=upstream_open from=d0 prec=1s",
		"d0#3 reclose instant @20.7s info prec=1s",
	}
	equalLines(t, got, want)
}

// Item 4: an interruption is one sag, one interruption and one
// de_energized event; no band events for dead phases, and a single dead
// phase has no band events either.
func TestNoBandEventsForDeadPhases(t *testing.T) {
	s := time.Second
	r := newRig(t, DefaultParams(), devInfo(0, -1, s, rolesMeter3))
	r.hold(0, 0, 5*s, 1, 1, 1)
	r.hold(0, 5*s, 3*time.Minute, 0, 0, 0)
	r.hold(0, 3*time.Minute, 4*time.Minute, 1, 1, 1)
	r.hold(0, 4*time.Minute, 7*time.Minute, 1, 0.02, 1) // phase B dead: a blown fuse
	r.hold(0, 7*time.Minute, 7*time.Minute+5*s, 1, 1, 1)
	equalLines(t, r.lines(), []string{
		"d0#1 sag start @5s ABC warning prec=1s",
		"d0#2 interruption start @5s ABC critical prec=1s",
		"d0#3 de_energized start @5s ABC critical cause=no_voltage prec=1s",
		"d0#1 sag end @5s..3m0s ABC long_duration_sag warning prec=1s flags=interruption",
		"d0#2 interruption end @5s..3m0s ABC sustained_interruption critical prec=1s",
		"d0#3 de_energized end @5s..3m0s ABC momentary critical cause=no_voltage prec=1s",
		"d0#4 sag start @4m0s worst=0.02(2.4V) B warning prec=1s",
		"d0#4 sag end @4m0s..7m0s worst=0.02(2.4V) B long_duration_sag warning prec=1s",
	})
}

// Item 6: de-energization spreads down from a device that reads no
// voltage, not only from an open switch: comm_lost devices below a dead
// bus are inside that outage.
func TestDeEnergizedBelowADeadDevice(t *testing.T) {
	s := time.Second
	r := newRig(t, DefaultParams(),
		devInfo(0, -1, s, rolesMeter3), // the substation bus, read by a relay
		devInfo(1, 0, s, rolesCurrent), // a switch with no voltage points
		devInfo(2, 1, s, rolesMeter3),  // a meter that goes silent
	)
	for sec := range 20 {
		when := time.Duration(sec) * s
		pu := 1.0
		if sec >= 5 {
			pu = 0
		}
		r.poll(0, when, pu, pu, pu)
		r.poll(1, when, 10)
		if sec < 5 {
			r.poll(2, when, 1, 1, 1)
		} else {
			r.fail(2, when)
		}
	}
	equalLines(t, r.lines(), []string{
		"d0#1 sag start @5s ABC warning prec=1s",
		"d0#2 interruption start @5s ABC critical prec=1s",
		"d0#3 de_energized start @5s ABC critical cause=no_voltage prec=1s",
		"d1#1 de_energized start @5s critical cause=upstream_de_energized from=d0 prec=1s flags=inferred",
		"d2#1 comm_lost start @5s warning cause=poll_failures prec=1s",
		"d2#2 de_energized start @7s critical cause=upstream_de_energized from=d0 prec=1s flags=inferred",
	})
}

// Item 7 (detection's side; the clock's is in package sample): time that
// goes backwards is taken as the latest time seen, so no event ends before
// it starts, and a Tick from the past does nothing.
func TestTimeNeverGoesBackwards(t *testing.T) {
	s := time.Second
	r := newRig(t, DefaultParams(), devInfo(0, -1, s, rolesMeter3))
	r.hold(0, 0, 10*s, 1, 1, 1)
	r.hold(0, 10*s, 15*s, 0, 0, 0)
	r.d.Tick(at(15 * s))
	r.poll(0, -15*s, 1, 1, 1) // a wall clock stepped back 30 s
	r.d.Tick(at(-14 * s))
	r.hold(0, 16*s, 40*s, 1, 1, 1)
	lines := r.lines()
	equalLines(t, lines, []string{
		"d0#1 sag start @10s ABC warning prec=1s",
		"d0#2 interruption start @10s ABC critical prec=1s",
		"d0#3 de_energized start @10s ABC critical cause=no_voltage prec=1s",
		"d0#1 sag end @10s..14s ABC temporary_sag warning prec=1s flags=interruption",
		"d0#2 interruption end @10s..14s ABC temporary_interruption critical prec=1s",
		"d0#3 de_energized end @10s..14s ABC momentary critical cause=no_voltage prec=1s",
	})
}

// Item 8: while comm_lost, a device's energization is unknown, unless the
// topology says it is out.
func TestEnergyUnknownWhileCommLost(t *testing.T) {
	s := time.Second
	r := newRig(t, DefaultParams(), devInfo(0, -1, s, rolesBL), devInfo(1, 0, s, rolesMeter3))
	r.poll(0, 0, 1, 0)
	r.poll(1, 0, 1, 1, 1)
	if st := r.d.Snapshot(); st[1].Energy != EnergyEnergized {
		t.Fatalf("heard at 1 pu: %v", st[1].Energy)
	}
	for sec := 1; sec <= 3; sec++ {
		r.poll(0, time.Duration(sec)*s, 1, 0)
		r.fail(1, time.Duration(sec)*s)
	}
	if st := r.d.Snapshot(); st[1].Comm != CommLost || st[1].Energy != EnergyUnknown {
		t.Fatalf("comm_lost: comm %v energy %v, want lost, unknown", st[1].Comm, st[1].Energy)
	}
	r.poll(0, 4*s, 0, 0)
	if st := r.d.Snapshot(); st[1].Energy != EnergyDeEnergized || st[1].Cause != CauseUpstreamOpen {
		t.Fatalf("below an open breaker: %v %v", st[1].Energy, st[1].Cause)
	}
}

// Item 9: the events in progress at a shutdown continue after a restart
// with the same IDs and starts, and end on evidence; new events get new IDs.
func TestSuspendResume(t *testing.T) {
	s := time.Second
	infos := []DeviceInfo{devInfo(0, -1, s, rolesBL), devInfo(1, 0, s, rolesMeter3)}
	r := newRig(t, DefaultParams(), infos...)
	r.hold(0, 0, 5*s, 1, 0)
	r.hold(1, 0, 5*s, 1, 1, 1)
	r.poll(0, 5*s, 0, 1) // open and locked out
	r.hold(1, 5*s, 10*s, 0, 0, 0)
	before := r.lines()
	carry := r.d.Suspend()
	if len(carry) != 2 {
		t.Fatalf("carry: %+v", carry)
	}

	// Restarted 50 s later.
	r2 := newRig(t, DefaultParams(), infos...)
	if err := r2.d.Resume(carry); err != nil {
		t.Fatal(err)
	}
	open := r2.d.OpenEvents()
	var kinds []string
	for _, e := range open {
		kinds = append(kinds, e.Kind.String())
	}
	equalLines(t, kinds, []string{"lockout", "de_energized", "interruption", "sag"})
	r2.hold(1, 60*s, 62*s, 0, 0, 0)
	r2.hold(0, 60*s, 62*s, 0, 1)
	r2.hold(0, 62*s, 64*s, 1, 0) // the crew resets the recloser
	r2.hold(1, 62*s, 64*s, 1, 1, 1)
	r2.hold(1, 64*s, 65*s, 0.5, 1, 1)
	equalLines(t, before, []string{
		"d0#1 trip instant @5s info shots=1 prec=1s",
		"d0#2 recloser_sequence start @5s warning shots=1 prec=1s",
		"d0#2 recloser_sequence end @5s..5s sustained warning shots=1 outcome=lockout prec=1s",
		"d0#3 lockout start @5s sustained critical prec=1s",
		"d1#1 sag start @5s ABC warning prec=1s",
		"d1#2 interruption start @5s ABC critical prec=1s",
		"d1#3 de_energized start @5s ABC critical cause=upstream_open from=d0 prec=1s",
	})
	equalLines(t, r2.lines(), []string{
		"d0#4 breaker_close instant @1m2s info prec=1s",
		"d0#3 lockout end @5s..1m2s sustained critical prec=1s flags=gap",
		"d1#1 sag end @5s..1m2s ABC temporary_sag warning prec=1s flags=gap|interruption",
		"d1#2 interruption end @5s..1m2s ABC temporary_interruption critical prec=1s flags=gap",
		"d1#3 de_energized end @5s..1m2s ABC momentary critical cause=upstream_open from=d0 prec=1s flags=gap",
		"d1#4 sag start @1m4s worst=0.5(60V) A warning prec=1s",
	})
	if got := r2.d.OpenEvents(); len(got) != 1 || !slices.ContainsFunc(got, func(e Event) bool { return e.Kind == KindSag }) {
		t.Fatalf("open after: %v", got)
	}
}

// A comm_lost carried over a restart stays open through the new process's
// first ticks and failed polls (no end and no second comm_lost) and ends
// at the device's first good answer, with its ID and start.
func TestResumedCommLoss(t *testing.T) {
	s := time.Second
	infos := []DeviceInfo{devInfo(0, -1, s, rolesMeter3)}
	r := newRig(t, DefaultParams(), infos...)
	r.hold(0, 0, 2*s, 1, 1, 1)
	for i := 2; i < 6; i++ {
		r.fail(0, time.Duration(i)*s)
	}
	carry := r.d.Suspend()
	r2 := newRig(t, DefaultParams(), infos...)
	if err := r2.d.Resume(carry); err != nil {
		t.Fatal(err)
	}
	r2.d.Tick(at(60 * s))
	r2.fail(0, 60*s)
	r2.d.Tick(at(61 * s))
	r2.fail(0, 61*s)
	r2.d.Tick(at(75 * s))
	if got := r2.lines(); len(got) != 0 {
		t.Fatalf("before the first good answer: %v", got)
	}
	r2.poll(0, 76*s, 1, 1, 1)
	equalLines(t, r.lines(), []string{"d0#1 comm_lost start @2s warning cause=poll_failures prec=1s"})
	equalLines(t, r2.lines(), []string{"d0#1 comm_lost end @2s..1m16s warning cause=poll_failures prec=1s flags=gap"})
}

// A recloser whose PTs are on its load side reads 0 V once it opens: its
// own outage and the one below it are blamed on its opening, not on "no
// voltage".
func TestLoadSidePTs(t *testing.T) {
	s := time.Second
	r := newRig(t, DefaultParams(), devInfo(0, -1, s, rolesRecloser), devInfo(1, 0, s, rolesMeter1))
	for sec := range 8 {
		when := time.Duration(sec) * s
		brk, trips, pu := 1.0, 4.0, 1.0
		if sec >= 3 {
			brk, trips, pu = 0, 5, 0
		}
		r.poll(0, when, brk, 0, trips, pu, pu, pu)
		r.poll(1, when, pu)
	}
	equalLines(t, r.lines(), []string{
		"d0#1 trip instant @3s info shots=1 prec=1s",
		"d0#2 recloser_sequence start @3s warning shots=1 prec=1s",
		"d0#3 sag start @3s ABC warning prec=1s",
		"d0#4 interruption start @3s ABC critical prec=1s",
		"d0#5 de_energized start @3s ABC critical cause=upstream_open from=d0 prec=1s",
		"d1#1 sag start @3s A warning prec=1s",
		"d1#2 interruption start @3s A critical prec=1s",
		"d1#3 de_energized start @3s A critical cause=upstream_open from=d0 prec=1s",
	})
}
