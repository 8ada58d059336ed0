package detect

import (
	"testing"
	"time"
)

// TestCommsVersusDeEnergized: timeouts are comm_lost and never a voltage
// event; good samples reading 0 V are an interruption.
func TestCommsVersusDeEnergized(t *testing.T) {
	s := time.Second
	type step struct {
		at   time.Duration
		v    float64 // pu on all phases; missing: a failed poll
		tick bool    // Tick at `at` instead of a poll
	}
	tests := []struct {
		name  string
		steps []step
		want  []string
	}{
		{
			name: "timeouts are comm_lost, not an interruption",
			steps: []step{{0, 1, false}, {1 * s, 1, false}, {2 * s, 1, false}, {3 * s, missing, false},
				{4 * s, missing, false}, {5 * s, missing, false}, {6 * s, missing, false}, {7 * s, missing, false},
				{8 * s, 1, false}},
			want: []string{
				"d0#1 comm_lost start @3s warning cause=poll_failures prec=1s",
				"d0#1 comm_lost end @3s..8s warning cause=poll_failures prec=1s",
			},
		},
		{
			name:  "two failed polls are not comms loss",
			steps: []step{{0, 1, false}, {1 * s, missing, false}, {2 * s, missing, false}, {3 * s, 1, false}},
		},
		{
			name: "good samples at 0 V are an interruption",
			steps: []step{{0, 1, false}, {1 * s, 1, false}, {2 * s, 1, false}, {3 * s, 0, false},
				{4 * s, 0, false}, {5 * s, 0, false}, {6 * s, 0, false}, {7 * s, 0, false}, {8 * s, 1, false}},
			want: []string{
				"d0#1 sag start @3s ABC warning prec=1s",
				"d0#2 interruption start @3s ABC critical prec=1s",
				"d0#3 de_energized start @3s ABC critical cause=no_voltage prec=1s",
				"d0#1 sag end @3s..8s ABC temporary_sag warning prec=1s flags=interruption",
				"d0#2 interruption end @3s..8s ABC temporary_interruption critical prec=1s",
				"d0#3 de_energized end @3s..8s ABC momentary critical cause=no_voltage prec=1s",
			},
		},
		{
			name: "no samples at all: comm_lost by time on Tick",
			steps: []step{{0, 1, false}, {1 * s, 1, false}, {2 * s, 1, false}, {12 * s, 0, true},
				{12*s + 1, 0, true}, {20 * s, 1, false}},
			want: []string{
				"d0#1 comm_lost start @12s warning cause=no_data prec=1s",
				"d0#1 comm_lost end @12s..20s warning cause=no_data prec=1s",
			},
		},
		{
			name:  "a device never heard from is comm_lost",
			steps: []step{{0, 0, true}, {10 * s, 0, true}, {11 * s, 0, true}},
			want:  []string{"d0#1 comm_lost start @10s warning cause=no_data prec=1s"},
		},
		{
			name: "a sag in progress stays open through comms loss and ends on good data",
			steps: []step{{0, 1, false}, {1 * s, 0.5, false}, {2 * s, 0.5, false}, {3 * s, missing, false},
				{4 * s, missing, false}, {5 * s, missing, false}, {6 * s, missing, false}, {7 * s, missing, false},
				{8 * s, missing, false}, {9 * s, missing, false}, {10 * s, 1, false}},
			want: []string{
				"d0#1 sag start @1s worst=0.5(60V) ABC warning prec=1s",
				"d0#2 comm_lost start @3s warning cause=poll_failures prec=1s",
				"d0#2 comm_lost end @3s..10s warning cause=poll_failures prec=1s",
				"d0#1 sag end @1s..10s worst=0.5(60V) ABC temporary_sag warning prec=8s flags=gap",
			},
		},
		{
			name: "a sag in progress stays open through comms loss and goes on",
			steps: []step{{0, 1, false}, {1 * s, 0.5, false}, {2 * s, missing, false}, {3 * s, missing, false},
				{4 * s, missing, false}, {5 * s, 0.6, false}, {6 * s, 1, false}},
			want: []string{
				"d0#1 sag start @1s worst=0.5(60V) ABC warning prec=1s",
				"d0#2 comm_lost start @2s warning cause=poll_failures prec=1s",
				"d0#2 comm_lost end @2s..5s warning cause=poll_failures prec=1s",
				"d0#1 sag end @1s..6s worst=0.5(60V) ABC temporary_sag warning prec=1s",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, DefaultParams(), devInfo(0, -1, time.Second, rolesMeter3))
			for _, st := range tc.steps {
				switch {
				case st.tick:
					r.d.Tick(at(st.at))
				case st.v != st.v: // missing
					r.fail(0, st.at)
				default:
					r.poll(0, st.at, st.v, st.v, st.v)
				}
			}
			equalLines(t, r.lines(), tc.want)
		})
	}
}

// TestCommLossDropsPendingBand: persistence does not bridge a comms loss.
func TestCommLossDropsPendingBand(t *testing.T) {
	s := time.Second
	r := newRig(t, DefaultParams(), devInfo(0, -1, s, rolesMeter1))
	r.hold(0, 0, 30*s, 0.94)
	r.hold(0, 30*s, 40*s) // failed polls
	r.hold(0, 40*s, 90*s, 0.94)
	r.hold(0, 90*s, 95*s, 1)
	equalLines(t, r.lines(), []string{
		"d0#1 comm_lost start @30s warning cause=poll_failures prec=1s",
		"d0#1 comm_lost end @30s..40s warning cause=poll_failures prec=1s",
	})
}

func TestSnapshot(t *testing.T) {
	s := time.Second
	r := newRig(t, DefaultParams(),
		devInfo(0, -1, s, rolesRecloser),
		devInfo(1, 0, s, rolesMeter1),
	)
	r.poll(0, 0, 1, 0, 4, 1.0, 0.5, 1.0)
	r.poll(1, 0)
	r.poll(0, 1*s, 0, 0, 5, 1.0, 0.5, 1.0)
	r.poll(1, 1*s)
	r.poll(1, 2*s)
	got := r.d.Snapshot()
	want := []DeviceState{
		{
			Index: 0, ID: "D0", Feeder: "F1", Comm: CommOK, LastGood: at(s),
			Voltage: [3]float64{1, 0.5, 1}, VoltageTime: [3]int64{at(s), at(s), at(s)}, Phases: PhaseA | PhaseB | PhaseC,
			Sag: true, Energy: EnergyEnergized, Breaker: BreakerOpen, Open: true, SequenceShots: 1,
		},
		{
			Index: 1, ID: "D1", Feeder: "F1", Comm: CommLost, FailedPolls: 3, Phases: PhaseA,
			Energy: EnergyDeEnergized, Cause: CauseUpstreamOpen, CauseDevice: 0, DeadSince: at(s),
		},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("device %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	open := r.d.OpenEvents()
	var kinds []string
	for _, e := range open {
		kinds = append(kinds, e.Kind.String())
	}
	equalLines(t, kinds, []string{"recloser_sequence", "sag", "comm_lost", "de_energized"})
	if st := r.d.Stats(); st != (Stats{Samples: 7*2 + 3*3, Polls: 5, Events: 5}) {
		t.Fatalf("stats = %+v", st)
	}
}
