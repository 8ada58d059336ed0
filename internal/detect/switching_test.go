package detect

import (
	"testing"
	"time"

	"github.com/feederd/feederd/internal/profile"
)

var (
	rolesBL      = []profile.Role{profile.RoleBreakerClosed, profile.RoleLockout}
	rolesBT      = []profile.Role{profile.RoleBreakerClosed, profile.RoleTripCount}
	rolesBS      = []profile.Role{profile.RoleBreakerClosed, profile.RoleShotCount}
	rolesCurrent = []profile.Role{profile.RoleCurrentA}
)

// sw is a stretch of constant switching point values from `from` (in
// seconds) up to the next stretch; the last one lasts until `until`.
type sw struct {
	from int
	vals []float64
}

func feedSwitching(r *rig, until int, steps ...sw) {
	for i, s := range steps {
		end := until
		if i+1 < len(steps) {
			end = steps[i+1].from
		}
		r.hold(0, time.Duration(s.from)*time.Second, time.Duration(end)*time.Second, s.vals...)
	}
}

func TestSwitching(t *testing.T) {
	tests := []struct {
		name  string
		roles []profile.Role
		until int
		steps []sw
		want  []string
	}{
		{
			name: "reclose sequence ending in lockout", roles: rolesBL, until: 101,
			steps: []sw{
				{0, []float64{1, 0}}, {5, []float64{0, 0}}, {7, []float64{1, 0}}, {10, []float64{0, 0}},
				{15, []float64{1, 0}}, {20, []float64{0, 0}}, {25, []float64{0, 1}}, {100, []float64{1, 0}},
			},
			want: []string{
				"d0#1 trip instant @5s info shots=1 prec=1s",
				"d0#2 recloser_sequence start @5s warning shots=1 prec=1s",
				"d0#3 reclose instant @7s info prec=1s",
				"d0#4 trip instant @10s info shots=1 prec=1s",
				"d0#5 reclose instant @15s info prec=1s",
				"d0#6 trip instant @20s info shots=1 prec=1s",
				"d0#2 recloser_sequence end @5s..25s sustained warning shots=3 outcome=lockout prec=1s",
				"d0#7 lockout start @25s sustained critical prec=1s",
				"d0#8 breaker_close instant @1m40s info prec=1s",
				"d0#7 lockout end @25s..1m40s sustained critical prec=1s",
			},
		},
		{
			name: "successful reclose is one momentary sequence", roles: rolesBL, until: 310,
			steps: []sw{{0, []float64{1, 0}}, {5, []float64{0, 0}}, {6, []float64{1, 0}}},
			want: []string{
				"d0#1 trip instant @5s info shots=1 prec=1s",
				"d0#2 recloser_sequence start @5s warning shots=1 prec=1s",
				"d0#3 reclose instant @6s info prec=1s",
				"d0#2 recloser_sequence end @5s..6s momentary warning shots=1 outcome=reclosed prec=1s",
			},
		},
		{
			name: "a trip late in the window joins the sequence", roles: rolesBL, until: 400,
			steps: []sw{{0, []float64{1, 0}}, {5, []float64{0, 0}}, {6, []float64{1, 0}}, {304, []float64{0, 0}}, {306, []float64{1, 0}}},
			want: []string{
				"d0#1 trip instant @5s info shots=1 prec=1s",
				"d0#2 recloser_sequence start @5s warning shots=1 prec=1s",
				"d0#3 reclose instant @6s info prec=1s",
				"d0#4 trip instant @5m4s info shots=1 prec=1s",
				"d0#5 reclose instant @5m6s info prec=1s",
				"d0#2 recloser_sequence end @5s..5m6s momentary warning shots=2 outcome=reclosed prec=1s",
			},
		},
		{
			name: "a trip after the window starts a new sequence", roles: rolesBL, until: 700,
			steps: []sw{{0, []float64{1, 0}}, {5, []float64{0, 0}}, {6, []float64{1, 0}}, {320, []float64{0, 0}}, {321, []float64{1, 0}}},
			want: []string{
				"d0#1 trip instant @5s info shots=1 prec=1s",
				"d0#2 recloser_sequence start @5s warning shots=1 prec=1s",
				"d0#3 reclose instant @6s info prec=1s",
				"d0#2 recloser_sequence end @5s..6s momentary warning shots=1 outcome=reclosed prec=1s",
				"d0#4 trip instant @5m20s info shots=1 prec=1s",
				"d0#5 recloser_sequence start @5m20s warning shots=1 prec=1s",
				"d0#6 reclose instant @5m21s info prec=1s",
				"d0#5 recloser_sequence end @5m20s..5m21s momentary warning shots=1 outcome=reclosed prec=1s",
			},
		},
		{
			name: "a reclose after an open longer than the sustained boundary", roles: rolesBL, until: 700,
			steps: []sw{{0, []float64{1, 0}}, {5, []float64{0, 0}}, {310, []float64{1, 0}}},
			want: []string{
				"d0#1 trip instant @5s info shots=1 prec=1s",
				"d0#2 recloser_sequence start @5s warning shots=1 prec=1s",
				"d0#3 reclose instant @5m10s info prec=1s",
				"d0#2 recloser_sequence end @5s..5m10s sustained warning shots=1 outcome=reclosed prec=1s",
			},
		},
		{
			name: "lockout inferred without a lockout point", roles: rolesBL[:1], until: 82,
			steps: []sw{{0, []float64{1}}, {5, []float64{0}}, {7, []float64{1}}, {10, []float64{0}}, {81, []float64{1}}},
			want: []string{
				"d0#1 trip instant @5s info shots=1 prec=1s",
				"d0#2 recloser_sequence start @5s warning shots=1 prec=1s",
				"d0#3 reclose instant @7s info prec=1s",
				"d0#4 trip instant @10s info shots=1 prec=1s",
				"d0#2 recloser_sequence end @5s..10s sustained warning shots=2 outcome=lockout prec=1s",
				"d0#5 lockout start @10s sustained critical prec=1s flags=inferred",
				"d0#6 breaker_close instant @1m21s info prec=1s",
				"d0#5 lockout end @10s..1m21s sustained critical prec=1s flags=inferred",
			},
		},
		{
			name: "trip and reclose between polls seen by the trip counter", roles: rolesBT, until: 310,
			steps: []sw{{0, []float64{1, 7}}, {5, []float64{1, 8}}, {6, []float64{1, 9}}},
			want: []string{
				// Operations no poll saw are spread over the interval
				// before the poll that counted them.
				"d0#1 trip instant @4.5s info shots=1 prec=1s flags=inferred",
				"d0#2 recloser_sequence start @4.5s warning shots=1 prec=1s flags=inferred",
				"d0#3 reclose instant @5s info prec=1s flags=inferred",
				"d0#4 trip instant @5.5s info shots=1 prec=1s flags=inferred",
				"d0#5 reclose instant @6s info prec=1s flags=inferred",
				"d0#2 recloser_sequence end @4.5s..6s momentary warning shots=2 outcome=reclosed prec=1s flags=inferred",
			},
		},
		{
			name: "trip and reclose between polls seen by the shot counter", roles: rolesBS, until: 310,
			steps: []sw{{0, []float64{1, 0}}, {5, []float64{1, 1}}, {100, []float64{1, 0}}},
			want: []string{
				"d0#1 trip instant @4.5s info shots=1 prec=1s flags=inferred",
				"d0#2 recloser_sequence start @4.5s warning shots=1 prec=1s flags=inferred",
				"d0#3 reclose instant @5s info prec=1s flags=inferred",
				"d0#2 recloser_sequence end @4.5s..5s momentary warning shots=1 outcome=reclosed prec=1s flags=inferred",
			},
		},
		{
			name: "open without the trip counter advancing is commanded", roles: rolesBT, until: 20,
			steps: []sw{{0, []float64{1, 7}}, {5, []float64{0, 7}}, {10, []float64{1, 7}}},
			want: []string{
				"d0#1 breaker_open instant @5s info prec=1s",
				"d0#2 breaker_close instant @10s info prec=1s",
			},
		},
		{
			name: "open with the trip counter advancing is a trip", roles: rolesBT, until: 310,
			steps: []sw{{0, []float64{1, 7}}, {5, []float64{0, 8}}, {6, []float64{1, 8}}},
			want: []string{
				"d0#1 trip instant @5s info shots=1 prec=1s",
				"d0#2 recloser_sequence start @5s warning shots=1 prec=1s",
				"d0#3 reclose instant @6s info prec=1s",
				"d0#2 recloser_sequence end @5s..6s momentary warning shots=1 outcome=reclosed prec=1s",
			},
		},
		{
			name: "two trips in one interval", roles: rolesBT, until: 310,
			steps: []sw{{0, []float64{1, 7}}, {5, []float64{0, 9}}, {6, []float64{1, 9}}},
			want: []string{
				// Two trips need a reclose between them: one trip and one
				// reclose no poll saw, then the trip that opened it.
				"d0#1 trip instant @4.333333333s info shots=1 prec=1s flags=inferred",
				"d0#2 recloser_sequence start @4.333333333s warning shots=1 prec=1s flags=inferred",
				"d0#3 reclose instant @4.666666666s info prec=1s flags=inferred",
				"d0#4 trip instant @5s info shots=1 prec=1s",
				"d0#5 reclose instant @6s info prec=1s",
				"d0#2 recloser_sequence end @4.333333333s..6s momentary warning shots=2 outcome=reclosed prec=1s flags=inferred",
			},
		},
		{
			name: "a counter reset or jump is not an operation", roles: rolesBT, until: 10,
			steps: []sw{{0, []float64{1, 7}}, {3, []float64{1, 0}}, {5, []float64{1, 500}}},
		},
		{
			name: "locked out at the first poll", roles: rolesBL, until: 5,
			steps: []sw{{0, []float64{0, 1}}},
			want:  []string{"d0#1 lockout start @0s sustained critical prec=1s flags=initial"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, DefaultParams(), devInfo(0, -1, time.Second, tc.roles))
			feedSwitching(r, tc.until, tc.steps...)
			equalLines(t, r.lines(), tc.want)
		})
	}
}

// TestUpstreamOpen: a protective device opening de-energizes everything
// below it; a device below that stops answering is comm_lost as well, never
// an outage of its own.
func TestUpstreamOpen(t *testing.T) {
	s := time.Second
	r := newRig(t, DefaultParams(),
		devInfo(0, -1, s, rolesBL),
		devInfo(1, 0, s, rolesMeter3),
		devInfo(2, 1, s, rolesCurrent),
	)
	step := func(sec int, brk, dv float64, eOK bool) {
		when := time.Duration(sec) * s
		r.poll(0, when, brk, 0)
		r.poll(1, when, dv, dv, dv)
		if eOK {
			r.poll(2, when, 5)
		} else {
			r.fail(2, when)
		}
	}
	step(0, 1, 1, true)
	step(1, 0, 1, true)
	for sec := 2; sec <= 4; sec++ {
		step(sec, 0, 0, false)
	}
	step(5, 1, 0, false)
	step(6, 1, 1, true)
	for sec := 7; sec <= 301; sec++ {
		r.poll(0, time.Duration(sec)*s, 1, 0)
	}
	equalLines(t, r.lines(), []string{
		"d0#1 trip instant @1s info shots=1 prec=1s",
		"d0#2 recloser_sequence start @1s warning shots=1 prec=1s",
		// d1 read full voltage at 1 s: its own reading wins over the
		// breaker's state; the open breaker explains its loss at 2 s.
		"d1#1 sag start @2s ABC warning prec=1s",
		"d1#2 interruption start @2s ABC critical prec=1s",
		"d1#3 de_energized start @2s ABC critical cause=upstream_open from=d0 prec=1s",
		// d2 measures no voltage: it is out because d1 is.
		"d2#1 de_energized start @2s critical cause=upstream_open from=d0 prec=1s flags=inferred",
		"d2#2 comm_lost start @2s warning cause=poll_failures prec=1s",
		"d0#3 reclose instant @5s info prec=1s",
		// d1 still read 0 V at 5 s: the outage ends on its voltage at 6 s
		// and keeps the cause that explained it.
		"d1#1 sag end @2s..6s ABC temporary_sag warning prec=1s flags=interruption",
		"d1#2 interruption end @2s..6s ABC temporary_interruption critical prec=1s",
		"d1#3 de_energized end @2s..6s ABC momentary critical cause=upstream_open from=d0 prec=1s",
		"d2#2 comm_lost end @2s..6s warning cause=poll_failures prec=1s",
		"d2#1 de_energized end @2s..6s momentary critical cause=upstream_open from=d0 prec=1s flags=inferred",
		"d0#2 recloser_sequence end @1s..5s momentary warning shots=1 outcome=reclosed prec=1s",
	})
}

// TestUpstreamCommanded: a commanded open (trip counter unchanged) also
// de-energizes the devices below; the most upstream open device is named.
func TestUpstreamCommanded(t *testing.T) {
	s := time.Second
	r := newRig(t, DefaultParams(),
		devInfo(10, -1, s, rolesBT),
		devInfo(11, 10, s, rolesBT),
		devInfo(12, 11, s, rolesCurrent),
	)
	r.poll(10, 0, 1, 3)
	r.poll(11, 0, 0, 4) // first seen open: no event, but the device below is out
	r.poll(10, 1*s, 0, 3)
	r.poll(11, 2*s, 1, 4)
	r.poll(10, 3*s, 1, 3)
	equalLines(t, r.lines(), []string{
		"d12#1 de_energized start @0s critical cause=upstream_open from=d11 prec=1s flags=inferred",
		"d10#1 breaker_open instant @1s info prec=1s",
		"d11#1 de_energized start @1s critical cause=upstream_open from=d10 prec=1s flags=inferred",
		"d11#2 breaker_close instant @2s info prec=1s",
		"d10#2 breaker_close instant @3s info prec=1s",
		"d11#1 de_energized end @1s..3s momentary critical cause=upstream_open from=d10 prec=1s flags=inferred",
		// The end carries the final cause: d10 opened above d11.
		"d12#1 de_energized end @0s..3s momentary critical cause=upstream_open from=d10 prec=1s flags=inferred",
	})
	st := r.d.Snapshot()
	if st[2].Energy != EnergyEnergized || st[0].Breaker != BreakerClosed || st[1].Breaker != BreakerClosed {
		t.Fatalf("snapshot: %+v", st)
	}
}

// TestSwitchTimersOnTick: with no poll arriving, Tick infers the lockout of
// a breaker that stays open, and ends the sequence of one that reclosed.
func TestSwitchTimersOnTick(t *testing.T) {
	s := time.Second
	p := DefaultParams()
	p.CommLossAfter = 10 * time.Minute
	r := newRig(t, p, devInfo(0, -1, s, rolesBL[:1]), devInfo(1, -1, s, rolesBL[:1]))
	r.poll(0, 0, 1)
	r.poll(0, 5*s, 0)
	r.poll(1, 0, 1)
	r.poll(1, 5*s, 0)
	r.poll(1, 6*s, 1)
	r.d.Tick(at(64 * s))
	r.d.Tick(at(65 * s))
	r.d.Tick(at(304 * s))
	r.d.Tick(at(305 * s))
	equalLines(t, r.lines(), []string{
		"d0#1 trip instant @5s info shots=1 prec=1s",
		"d0#2 recloser_sequence start @5s warning shots=1 prec=1s",
		"d1#1 trip instant @5s info shots=1 prec=1s",
		"d1#2 recloser_sequence start @5s warning shots=1 prec=1s",
		"d1#3 reclose instant @6s info prec=1s",
		"d0#2 recloser_sequence end @5s..5s sustained warning shots=1 outcome=lockout prec=1s",
		"d0#3 lockout start @5s sustained critical prec=1s flags=inferred",
		"d1#2 recloser_sequence end @5s..6s momentary warning shots=1 outcome=reclosed prec=1s",
	})
}
