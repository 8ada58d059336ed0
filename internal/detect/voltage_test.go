package detect

import (
	"testing"
	"time"
)

const ms = time.Millisecond

// TestRMSCategories: each IEEE 1159 category, on a single-phase device.
// Momentary and instantaneous events need a 100 ms poll to be seen at all.
func TestRMSCategories(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		segs     []seg
		want     []string
	}{
		{
			name: "instantaneous sag", interval: 100 * ms,
			segs: []seg{{time.Second, 1}, {300 * ms, 0.7}, {time.Second, 1}},
			want: []string{
				"d0#1 sag start @1s worst=0.7(84V) A warning prec=100ms",
				"d0#1 sag end @1s..1.3s worst=0.7(84V) A instantaneous_sag warning prec=100ms",
			},
		},
		{
			name: "momentary sag", interval: 100 * ms,
			segs: []seg{{time.Second, 1}, {time.Second, 0.5}, {time.Second, 1}},
			want: []string{
				"d0#1 sag start @1s worst=0.5(60V) A warning prec=100ms",
				"d0#1 sag end @1s..2s worst=0.5(60V) A momentary_sag warning prec=100ms",
			},
		},
		{
			name: "temporary sag", interval: time.Second,
			segs: []seg{{5 * time.Second, 1}, {10 * time.Second, 0.7}, {5 * time.Second, 1}},
			want: []string{
				"d0#1 sag start @5s worst=0.7(84V) A warning prec=1s",
				"d0#1 sag end @5s..15s worst=0.7(84V) A temporary_sag warning prec=1s",
			},
		},
		{
			name: "undervoltage", interval: time.Second,
			segs: []seg{{5 * time.Second, 1}, {2 * time.Minute, 0.85}, {5 * time.Second, 1}},
			want: []string{
				"d0#1 sag start @5s worst=0.85(102V) A warning prec=1s",
				"d0#2 band start @5s worst=0.85(102V) A range_a warning prec=1s",
				"d0#3 band start @5s worst=0.85(102V) A range_b critical prec=1s",
				"d0#1 sag end @5s..2m5s worst=0.85(102V) A undervoltage warning prec=1s",
				"d0#2 band end @5s..2m5s worst=0.85(102V) A range_a warning prec=1s",
				"d0#3 band end @5s..2m5s worst=0.85(102V) A range_b critical prec=1s",
			},
		},
		{
			name: "long duration sag deeper than undervoltage", interval: time.Second,
			segs: []seg{{5 * time.Second, 1}, {2 * time.Minute, 0.5}, {5 * time.Second, 1}},
			want: []string{
				"d0#1 sag start @5s worst=0.5(60V) A warning prec=1s",
				"d0#2 band start @5s worst=0.5(60V) A range_a warning prec=1s",
				"d0#3 band start @5s worst=0.5(60V) A range_b critical prec=1s",
				"d0#1 sag end @5s..2m5s worst=0.5(60V) A long_duration_sag warning prec=1s",
				"d0#2 band end @5s..2m5s worst=0.5(60V) A range_a warning prec=1s",
				"d0#3 band end @5s..2m5s worst=0.5(60V) A range_b critical prec=1s",
			},
		},
		{
			name: "momentary interruption", interval: 100 * ms,
			segs: []seg{{time.Second, 1}, {time.Second, 0.05}, {time.Second, 1}},
			want: []string{
				"d0#1 sag start @1s worst=0.05(6V) A warning prec=100ms",
				"d0#2 interruption start @1s worst=0.05(6V) A critical prec=100ms",
				"d0#3 de_energized start @1s A critical cause=no_voltage prec=100ms",
				"d0#1 sag end @1s..2s worst=0.05(6V) A momentary_sag warning prec=100ms flags=interruption",
				"d0#2 interruption end @1s..2s worst=0.05(6V) A momentary_interruption critical prec=100ms",
				"d0#3 de_energized end @1s..2s A momentary critical cause=no_voltage prec=100ms",
			},
		},
		{
			name: "temporary interruption", interval: time.Second,
			segs: []seg{{5 * time.Second, 1}, {10 * time.Second, 0.05}, {5 * time.Second, 1}},
			want: []string{
				"d0#1 sag start @5s worst=0.05(6V) A warning prec=1s",
				"d0#2 interruption start @5s worst=0.05(6V) A critical prec=1s",
				"d0#3 de_energized start @5s A critical cause=no_voltage prec=1s",
				"d0#1 sag end @5s..15s worst=0.05(6V) A temporary_sag warning prec=1s flags=interruption",
				"d0#2 interruption end @5s..15s worst=0.05(6V) A temporary_interruption critical prec=1s",
				"d0#3 de_energized end @5s..15s A momentary critical cause=no_voltage prec=1s",
			},
		},
		{
			name: "sustained interruption", interval: time.Second,
			segs: []seg{{5 * time.Second, 1}, {6 * time.Minute, 0.05}, {5 * time.Second, 1}},
			want: []string{
				"d0#1 sag start @5s worst=0.05(6V) A warning prec=1s",
				"d0#2 interruption start @5s worst=0.05(6V) A critical prec=1s",
				"d0#3 de_energized start @5s A critical cause=no_voltage prec=1s",
				"d0#1 sag end @5s..6m5s worst=0.05(6V) A long_duration_sag warning prec=1s flags=interruption",
				"d0#2 interruption end @5s..6m5s worst=0.05(6V) A sustained_interruption critical prec=1s",
				"d0#3 de_energized end @5s..6m5s A sustained critical cause=no_voltage prec=1s",
			},
		},
		{
			name: "instantaneous swell", interval: 100 * ms,
			segs: []seg{{time.Second, 1}, {200 * ms, 1.3}, {time.Second, 1}},
			want: []string{
				"d0#1 swell start @1s worst=1.3(156V) A warning prec=100ms",
				"d0#1 swell end @1s..1.2s worst=1.3(156V) A instantaneous_swell warning prec=100ms",
			},
		},
		{
			name: "momentary swell", interval: 100 * ms,
			segs: []seg{{time.Second, 1}, {time.Second, 1.15}, {time.Second, 1}},
			want: []string{
				"d0#1 swell start @1s worst=1.15(138V) A warning prec=100ms",
				"d0#1 swell end @1s..2s worst=1.15(138V) A momentary_swell warning prec=100ms",
			},
		},
		{
			name: "temporary swell", interval: time.Second,
			segs: []seg{{5 * time.Second, 1}, {10 * time.Second, 1.15}, {5 * time.Second, 1}},
			want: []string{
				"d0#1 swell start @5s worst=1.15(138V) A warning prec=1s",
				"d0#1 swell end @5s..15s worst=1.15(138V) A temporary_swell warning prec=1s",
			},
		},
		{
			name: "overvoltage", interval: time.Second,
			segs: []seg{{5 * time.Second, 1}, {2 * time.Minute, 1.15}, {5 * time.Second, 1}},
			want: []string{
				"d0#1 swell start @5s worst=1.15(138V) A warning prec=1s",
				"d0#2 band start @5s worst=1.15(138V) A range_a warning prec=1s",
				"d0#3 band start @5s worst=1.15(138V) A range_b critical prec=1s",
				"d0#1 swell end @5s..2m5s worst=1.15(138V) A overvoltage warning prec=1s",
				"d0#2 band end @5s..2m5s worst=1.15(138V) A range_a warning prec=1s",
				"d0#3 band end @5s..2m5s worst=1.15(138V) A range_b critical prec=1s",
			},
		},
		{
			name: "long duration swell above overvoltage", interval: time.Second,
			segs: []seg{{5 * time.Second, 1}, {2 * time.Minute, 1.25}, {5 * time.Second, 1}},
			want: []string{
				"d0#1 swell start @5s worst=1.25(150V) A warning prec=1s",
				"d0#2 band start @5s worst=1.25(150V) A range_a warning prec=1s",
				"d0#3 band start @5s worst=1.25(150V) A range_b critical prec=1s",
				"d0#1 swell end @5s..2m5s worst=1.25(150V) A long_duration_swell warning prec=1s",
				"d0#2 band end @5s..2m5s worst=1.25(150V) A range_a warning prec=1s",
				"d0#3 band end @5s..2m5s worst=1.25(150V) A range_b critical prec=1s",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, DefaultParams(), devInfo(0, -1, tc.interval, rolesMeter1))
			r.run(0, tc.segs...)
			equalLines(t, r.lines(), tc.want)
			if got := r.d.OpenEvents(); len(got) != 0 {
				t.Fatalf("open events left: %v", got)
			}
		})
	}
}

// TestBands: ANSI C84.1 ranges with persistence and hysteresis.
func TestBands(t *testing.T) {
	s := time.Second
	var hover []seg
	for range 60 {
		hover = append(hover, seg{s, 0.949}, seg{s, 0.951}, seg{s, 0.953})
	}
	tests := []struct {
		name string
		segs []seg
		want []string
	}{
		{
			name: "excursion shorter than persistence",
			segs: []seg{{5 * s, 1}, {59 * s, 0.94}, {5 * s, 1}},
		},
		{
			name: "outside range A for longer than persistence",
			segs: []seg{{5 * s, 1}, {90 * s, 0.94}, {5 * s, 1}},
			want: []string{
				"d0#1 band start @5s worst=0.94(112.8V) A range_a warning prec=1s",
				"d0#1 band end @5s..1m35s worst=0.94(112.8V) A range_a warning prec=1s",
			},
		},
		{
			name: "persistence reached on the 60th second",
			segs: []seg{{5 * s, 1}, {61 * s, 0.94}, {5 * s, 1}},
			want: []string{
				"d0#1 band start @5s worst=0.94(112.8V) A range_a warning prec=1s",
				"d0#1 band end @5s..1m6s worst=0.94(112.8V) A range_a warning prec=1s",
			},
		},
		{
			name: "outside range B low",
			segs: []seg{{5 * s, 1}, {90 * s, 0.91}, {5 * s, 1}},
			want: []string{
				"d0#1 band start @5s worst=0.91(109.2V) A range_a warning prec=1s",
				"d0#2 band start @5s worst=0.91(109.2V) A range_b critical prec=1s",
				"d0#1 band end @5s..1m35s worst=0.91(109.2V) A range_a warning prec=1s",
				"d0#2 band end @5s..1m35s worst=0.91(109.2V) A range_b critical prec=1s",
			},
		},
		{
			name: "outside range A high only",
			segs: []seg{{5 * s, 1}, {90 * s, 1.055}, {5 * s, 1}},
			want: []string{
				"d0#1 band start @5s worst=1.055(126.6V) A range_a warning prec=1s",
				"d0#1 band end @5s..1m35s worst=1.055(126.6V) A range_a warning prec=1s",
			},
		},
		{
			name: "outside range B high",
			segs: []seg{{5 * s, 1}, {90 * s, 1.06}, {5 * s, 1}},
			want: []string{
				"d0#1 band start @5s worst=1.06(127.2V) A range_a warning prec=1s",
				"d0#2 band start @5s worst=1.06(127.2V) A range_b critical prec=1s",
				"d0#1 band end @5s..1m35s worst=1.06(127.2V) A range_a warning prec=1s",
				"d0#2 band end @5s..1m35s worst=1.06(127.2V) A range_b critical prec=1s",
			},
		},
		{
			name: "B event nested in a longer A event",
			segs: []seg{{5 * s, 1}, {30 * s, 0.94}, {90 * s, 0.91}, {90 * s, 0.94}, {5 * s, 1}},
			want: []string{
				"d0#1 band start @5s worst=0.91(109.2V) A range_a warning prec=1s",
				"d0#2 band start @35s worst=0.91(109.2V) A range_b critical prec=1s",
				"d0#2 band end @35s..2m5s worst=0.91(109.2V) A range_b critical prec=1s",
				"d0#1 band end @5s..3m35s worst=0.91(109.2V) A range_a warning prec=1s",
			},
		},
		{
			name: "hovering at the Range A limit never stays outside: no event",
			segs: append(append([]seg{{5 * s, 1}}, hover...), seg{5 * s, 1}),
		},
		{
			// Issue 7, item 5: C84.1 alarms on voltage staying outside.
			name: "one reading outside, then inside the range within the hysteresis: no event",
			segs: []seg{{5 * s, 1}, {s, 0.949}, {70 * s, 0.951}, {5 * s, 1}},
		},
		{
			name: "back inside the range, within the hysteresis, resets persistence",
			segs: []seg{{5 * s, 1}, {30 * s, 0.94}, {40 * s, 0.952}, {5 * s, 1}},
		},
		{
			name: "the hysteresis delays the end of a started event",
			segs: []seg{{5 * s, 1}, {90 * s, 0.94}, {40 * s, 0.952}, {5 * s, 1}},
			want: []string{
				"d0#1 band start @5s worst=0.94(112.8V) A range_a warning prec=1s",
				"d0#1 band end @5s..2m15s worst=0.94(112.8V) A range_a warning prec=1s",
			},
		},
		{
			name: "back inside by the hysteresis resets persistence",
			segs: []seg{{5 * s, 1}, {40 * s, 0.94}, {s, 0.956}, {40 * s, 0.94}, {5 * s, 1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, DefaultParams(), devInfo(0, -1, time.Second, rolesMeter1))
			r.run(0, tc.segs...)
			equalLines(t, r.lines(), tc.want)
		})
	}
}

// TestBandPersistenceOnTick: with slow polls, persistence elapses between
// samples and Tick opens the event; Start is the first sample outside.
func TestBandPersistenceOnTick(t *testing.T) {
	p := DefaultParams()
	p.CommLossAfter = 2 * time.Minute
	r := newRig(t, p, devInfo(0, -1, 40*time.Second, rolesMeter1))
	r.poll(0, 0, 0.94)
	r.poll(0, 40*time.Second, 0.94)
	r.d.Tick(at(59 * time.Second))
	equalLines(t, r.lines(), nil)
	r.d.Tick(at(60 * time.Second))
	equalLines(t, r.lines(), []string{"d0#1 band start @0s worst=0.94(112.8V) A range_a warning prec=40s"})
	r.d.Tick(at(70 * time.Second))
	r.poll(0, 80*time.Second, 1)
	equalLines(t, r.lines(), []string{"d0#1 band end @0s..1m20s worst=0.94(112.8V) A range_a warning prec=40s"})
}

// TestHysteresisSag: a voltage hovering around the sag threshold makes one
// sag, which ends at threshold + hysteresis (0.92 pu) and does not restart
// above the threshold.
func TestHysteresisSag(t *testing.T) {
	s := time.Second
	tests := []struct {
		name string
		segs []seg
		want []string
	}{
		{
			name: "sag",
			segs: []seg{{s, 1}, {s, 0.899}, {s, 0.901}, {s, 0.915}, {s, 0.899}, {s, 0.901}, {s, 0.915},
				{s, 0.921}, {s, 0.901}, {s, 0.915}, {s, 0.899 + 0.0011}, {s, 1}},
			want: []string{
				"d0#1 sag start @1s worst=0.899(107.9V) ABC warning prec=1s",
				"d0#1 sag end @1s..7s worst=0.899(107.9V) ABC temporary_sag warning prec=1s",
			},
		},
		{
			name: "swell",
			segs: []seg{{s, 1}, {s, 1.101}, {s, 1.099}, {s, 1.085}, {s, 1.101}, {s, 1.079}, {s, 1.099}, {s, 1}},
			want: []string{
				"d0#1 swell start @1s worst=1.101(132.1V) ABC warning prec=1s",
				"d0#1 swell end @1s..5s worst=1.101(132.1V) ABC temporary_swell warning prec=1s",
			},
		},
		{
			name: "interruption",
			segs: []seg{{s, 1}, {s, 0.099}, {s, 0.101}, {s, 0.115}, {s, 0.099}, {s, 0.121}, {s, 0.101}, {s, 1}},
			want: []string{
				"d0#1 sag start @1s worst=0.099(11.88V) ABC warning prec=1s",
				"d0#2 interruption start @1s worst=0.099(11.88V) ABC critical prec=1s",
				"d0#3 de_energized start @1s ABC critical cause=no_voltage prec=1s",
				"d0#2 interruption end @1s..5s worst=0.099(11.88V) ABC temporary_interruption critical prec=1s",
				"d0#3 de_energized end @1s..5s ABC momentary critical cause=no_voltage prec=1s",
				"d0#1 sag end @1s..7s worst=0.099(11.88V) ABC temporary_sag warning prec=1s flags=interruption",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, DefaultParams(), devInfo(0, -1, time.Second, rolesMeter3))
			r.run(0, tc.segs...)
			equalLines(t, r.lines(), tc.want)
		})
	}
}

// TestPolyphase: IEC 61000-4-30 aggregation over three phases.
func TestPolyphase(t *testing.T) {
	s := time.Second
	type step struct {
		at      time.Duration
		a, b, c float64
	}
	tests := []struct {
		name  string
		steps []step
		want  []string
	}{
		{
			name: "sag starts with A and ends when all phases recovered",
			steps: []step{
				{0, 1, 1, 1}, {1 * s, 0.8, 1, 1}, {2 * s, 0.8, 0.85, 1}, {3 * s, 1, 0.85, 1},
				{4 * s, 1, 0.91, 1}, {5 * s, 1, 1, 1},
			},
			want: []string{
				"d0#1 sag start @1s worst=0.8(96V) A warning prec=1s",
				"d0#1 sag end @1s..5s worst=0.8(96V) AB temporary_sag warning prec=1s",
			},
		},
		{
			name: "interruption needs all phases, ends when one recovers",
			steps: []step{
				{0, 1, 1, 1}, {1 * s, 0, 0, 1}, {2 * s, 0.02, 0.03, 0.05}, {3 * s, 0.02, 0.5, 0.04},
				{4 * s, 1, 1, 1},
			},
			want: []string{
				"d0#1 sag start @1s AB warning prec=1s",
				"d0#2 interruption start @2s worst=0.02(2.4V) ABC critical prec=1s",
				"d0#3 de_energized start @2s ABC critical cause=no_voltage prec=1s",
				"d0#2 interruption end @2s..3s worst=0.02(2.4V) ABC momentary_interruption critical prec=1s",
				"d0#3 de_energized end @2s..3s ABC momentary critical cause=no_voltage prec=1s",
				"d0#1 sag end @1s..4s ABC momentary_sag warning prec=1s flags=interruption",
			},
		},
		{
			name: "a poll missing a phase cannot end a sag nor start an interruption",
			steps: []step{
				{0, 1, 1, 1}, {1 * s, 0.05, 0.05, missing}, {2 * s, 1, 1, missing}, {3 * s, 1, 1, 1},
			},
			want: []string{
				"d0#1 sag start @1s worst=0.05(6V) AB warning prec=1s",
				"d0#1 sag end @1s..3s worst=0.05(6V) AB momentary_sag warning prec=1s",
			},
		},
		{
			name: "a poll missing a phase can start a sag and end an interruption",
			steps: []step{
				{0, 0.05, 0.05, 0.05}, {1 * s, 0.05, missing, 0.5}, {2 * s, 1, 1, 1},
			},
			want: []string{
				"d0#1 sag start @0s worst=0.05(6V) ABC warning prec=1s",
				"d0#2 interruption start @0s worst=0.05(6V) ABC critical prec=1s",
				"d0#3 de_energized start @0s ABC critical cause=no_voltage prec=1s",
				"d0#2 interruption end @0s..1s worst=0.05(6V) ABC momentary_interruption critical prec=1s",
				"d0#3 de_energized end @0s..1s ABC momentary critical cause=no_voltage prec=1s",
				"d0#1 sag end @0s..2s worst=0.05(6V) ABC momentary_sag warning prec=1s flags=interruption",
			},
		},
		{
			name: "sag and swell at once on different phases",
			steps: []step{
				{0, 1, 1, 1}, {1 * s, 0.8, 1.15, 1}, {2 * s, 1, 1, 1},
			},
			want: []string{
				"d0#1 sag start @1s worst=0.8(96V) A warning prec=1s",
				"d0#2 swell start @1s worst=1.15(138V) B warning prec=1s",
				"d0#1 sag end @1s..2s worst=0.8(96V) A momentary_sag warning prec=1s",
				"d0#2 swell end @1s..2s worst=1.15(138V) B momentary_swell warning prec=1s",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, DefaultParams(), devInfo(0, -1, time.Second, rolesMeter3))
			for _, st := range tc.steps {
				r.poll(0, st.at, st.a, st.b, st.c)
			}
			equalLines(t, r.lines(), tc.want)
		})
	}
}

// TestGap: a gap between samples widens the precision of the edge it
// precedes and sets FlagGap.
func TestGap(t *testing.T) {
	s := time.Second
	r := newRig(t, DefaultParams(), devInfo(0, -1, time.Second, rolesMeter1))
	r.poll(0, 0, 1)
	r.poll(0, 1*s, 1)
	r.poll(0, 6*s, 0.5) // 5 s gap before the start
	r.poll(0, 7*s, 0.5)
	r.poll(0, 8*s, 0.5)
	r.poll(0, 10*s, 1) // 2 s gap before the end: not more than two intervals
	r.poll(0, 11*s, 0.5)
	r.poll(0, 12*s, 0.5)
	r.poll(0, 20*s, 1) // 8 s gap before the end
	equalLines(t, r.lines(), []string{
		"d0#1 sag start @6s worst=0.5(60V) A warning prec=5s flags=gap",
		"d0#1 sag end @6s..10s worst=0.5(60V) A temporary_sag warning prec=5s flags=gap",
		"d0#2 sag start @11s worst=0.5(60V) A warning prec=1s",
		"d0#2 sag end @11s..20s worst=0.5(60V) A temporary_sag warning prec=8s flags=gap",
	})
}
