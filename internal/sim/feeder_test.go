package sim

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sim/devsrv"
	"github.com/feederd/feederd/internal/sim/simtest"
)

// t0 is noon, so the load curve stands at 0.85 of peak.
var t0 = time.Date(2025, 1, 15, 12, 0, 0, 0, time.UTC)

// twoFeeders is
//
//	F1  F1-BRK ─ F1-S1 ─ F1-REC ─ F1-S2 ─ F1-SEC ─ F1-S3 ─ F1-MTR
//	                                 └─ F1-SNS      ╎
//	F2  F2-BRK ─ F2-S1 ─ F2-MTR                     ╎
//	              └─ TIE (normally open) ╌╌╌╌╌╌╌╌╌╌╌╌┘
//
// %s takes extra feeder keys for F1 (trip_delay, reclose).
const twoFeeders = `
tick: 1s
seed: 9
profiles: [sel751a.yaml, pm5100.yaml, feeder-rtu.yaml]
devices:
  - {id: F1-BRK, profile: sel751a, unit: 1, port: 15001, nominal_voltage: 7200}
  - {id: F1-REC, profile: feeder-rtu, unit: 1, port: 15002, nominal_voltage: 7200}
  - {id: F1-SNS, profile: feeder-rtu, unit: 1, port: 15003, nominal_voltage: 7200}
  - {id: F1-SEC, profile: feeder-rtu, unit: 1, port: 15004, nominal_voltage: 7200}
  - {id: F1-MTR, profile: pm5100, unit: 1, port: 15005, nominal_voltage: 120}
  - {id: F2-BRK, profile: sel751a, unit: 1, port: 15006, nominal_voltage: 7200}
  - {id: F2-MTR, profile: pm5100, unit: 1, port: 15007, nominal_voltage: 120}
  - {id: TIE, profile: feeder-rtu, unit: 1, port: 15008, nominal_voltage: 7200}
feeders:
  - id: F1
    nominal_voltage: 7200
%s
    nodes:
      - {id: F1-BRK, kind: breaker, device: F1-BRK}
      - {id: F1-S1, kind: section, upstream: F1-BRK, section: {load_kw: 600}}
      - {id: F1-REC, kind: recloser, device: F1-REC, upstream: F1-S1}
      - {id: F1-S2, kind: section, upstream: F1-REC, section: {load_kw: 900}}
      - {id: F1-SNS, kind: sensor, device: F1-SNS, upstream: F1-S2}
      - {id: F1-SEC, kind: sectionalizer, device: F1-SEC, upstream: F1-S2}
      - {id: F1-S3, kind: section, upstream: F1-SEC, section: {load_kw: 500}}
      - {id: F1-MTR, kind: meter, device: F1-MTR, upstream: F1-S3, section: {load_kw: 20}}
  - id: F2
    source_kv: 12.47
    nodes:
      - {id: F2-BRK, kind: breaker, device: F2-BRK}
      - {id: F2-S1, kind: section, upstream: F2-BRK, section: {load_kw: 800}}
      - {id: F2-MTR, kind: meter, device: F2-MTR, upstream: F2-S1}
      - {id: TIE, kind: switch, device: TIE, upstream: F2-S1, normally_open: true, tie: F1-S3}
`

func loadTestConfig(t testing.TB, text string) *Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sim.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path, simtest.Profiles)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newFeederSim builds twoFeeders with extra F1 keys at t0.
func newFeederSim(t testing.TB, f1 string) *Sim {
	t.Helper()
	s, err := Build(loadTestConfig(t, fmt.Sprintf(twoFeeders, f1)), t0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// at advances s to t0 + d.
func (s *Sim) mustAdvance(t testing.TB, d time.Duration) {
	t.Helper()
	if err := s.AdvanceTo(t0.Add(d)); err != nil {
		t.Fatal(err)
	}
}

func (s *Sim) mustInject(t testing.TB, ev Event) {
	t.Helper()
	if err := s.Inject(ev); err != nil {
		t.Fatalf("inject %s %s: %v", ev.Action, ev.Target, err)
	}
}

func (s *Sim) device(t testing.TB, id string) *devsrv.Device {
	t.Helper()
	for _, d := range s.Devices {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf("no device %s", id)
	return nil
}

// byRole reads the point of a role.
func byRole(t testing.TB, d *devsrv.Device, r profile.Role) float64 {
	t.Helper()
	for _, p := range d.Profile.Points {
		if p.Role == r {
			v, err := d.Value(p.Name)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("%s has no %s point", d.ID, r)
	return 0
}

// phasePU returns a device's phase voltages in per-unit of its nominal.
func (s *Sim) phasePU(t testing.TB, id string) [3]float64 {
	t.Helper()
	d := s.device(t, id)
	nominal := s.cfg.Devices[slices.Index(s.Devices, d)].NominalVoltage
	var v [3]float64
	for k, r := range []profile.Role{profile.RoleVoltageA, profile.RoleVoltageB, profile.RoleVoltageC} {
		v[k] = byRole(t, d, r) / nominal
	}
	return v
}

// switchState is breaker_closed, lockout, shot_count and trip_count of a
// feeder-rtu device.
func (s *Sim) switchState(t testing.TB, id string) [4]float64 {
	t.Helper()
	d := s.device(t, id)
	return [4]float64{byRole(t, d, profile.RoleBreakerClosed), byRole(t, d, profile.RoleLockout), byRole(t, d, profile.RoleShotCount), byRole(t, d, profile.RoleTripCount)}
}

func TestFeederSteadyState(t *testing.T) {
	s := newFeederSim(t, "")
	s.mustAdvance(t, 10*time.Second)
	// Every device is energised and inside ANSI Range A; voltages fall
	// along the feeder.
	prev := 2.0
	for _, id := range []string{"F1-BRK", "F1-REC", "F1-SEC", "F1-MTR"} {
		v := s.phasePU(t, id)
		for k := range v {
			if v[k] < 0.95 || v[k] > 1.05 {
				t.Errorf("%s phase %d = %.4f pu, want within 0.95..1.05", id, k, v[k])
			}
		}
		avg := (v[0] + v[1] + v[2]) / 3
		if avg >= prev {
			t.Errorf("%s at %.4f pu is not below the device upstream (%.4f)", id, avg, prev)
		}
		prev = avg
	}
	// The breaker carries the whole feeder: 2020 kW peak × 0.85 at noon,
	// I = P / (3 × 7200 V × pf).
	brk := s.device(t, "F1-BRK")
	kw := byRole(t, brk, profile.RoleActivePower)
	if want := 2020 * 0.85; math.Abs(kw-want) > 0.03*want {
		t.Errorf("F1-BRK kw = %v, want %v ±3%%", kw, want)
	}
	pf := byRole(t, brk, profile.RolePowerFactor)
	ia := byRole(t, brk, profile.RoleCurrentA)
	if want := 2020 * 0.85 * 1000 / (3 * 7200 * pf); math.Abs(ia-want) > 0.04*want {
		t.Errorf("F1-BRK ia = %v A, want %v ±4%%", ia, want)
	}
	// The meter on a 120 V service reports secondary amperes: its 20 kW
	// primary current × 7200/120.
	mtr := s.device(t, "F1-MTR")
	if ia, want := byRole(t, mtr, profile.RoleCurrentA), 20*0.85*1000/(3*7200*0.95)*60; math.Abs(ia-want) > 0.05*want {
		t.Errorf("F1-MTR ia = %v A, want %v ±5%%", ia, want)
	}
	// The normally open tie reads its head voltage and carries nothing.
	if st := s.switchState(t, "TIE"); st != [4]float64{0, 0, 0, 0} {
		t.Errorf("TIE closed, lockout, shots, trips = %v, want all 0", st)
	}
	if ia := byRole(t, s.device(t, "TIE"), profile.RoleCurrentA); ia != 0 {
		t.Errorf("TIE ia = %v, want 0", ia)
	}
}

// TestOpenDeenergizesDownstream opens each switching device: at the next
// step every device below it reads under 0.1 pu and no current, every
// other device is unaffected; closing restores them.
func TestOpenDeenergizesDownstream(t *testing.T) {
	devices := []string{"F1-BRK", "F1-REC", "F1-SNS", "F1-SEC", "F1-MTR", "F2-BRK", "F2-MTR", "TIE"}
	tests := []struct {
		open string
		dead []string
	}{
		{"F1-BRK", []string{"F1-REC", "F1-SNS", "F1-SEC", "F1-MTR"}},
		{"F1-REC", []string{"F1-SNS", "F1-SEC", "F1-MTR"}},
		{"F1-SEC", []string{"F1-MTR"}},
		{"F2-BRK", []string{"F2-MTR", "TIE"}},
	}
	for _, tt := range tests {
		t.Run(tt.open, func(t *testing.T) {
			s := newFeederSim(t, "")
			s.mustAdvance(t, 5*time.Second)
			s.mustInject(t, Event{Action: ActionOpen, Target: tt.open})
			s.mustAdvance(t, 6*time.Second)
			for _, id := range devices {
				v := s.phasePU(t, id)
				ia := byRole(t, s.device(t, id), profile.RoleCurrentA)
				if slices.Contains(tt.dead, id) {
					if max(v[0], v[1], v[2]) >= 0.1 || ia != 0 {
						t.Errorf("%s below open %s: %v pu, ia %v; want < 0.1 pu and 0 A", id, tt.open, v, ia)
					}
					continue
				}
				if min(v[0], v[1], v[2]) < 0.95 {
					t.Errorf("%s not below open %s: %v pu, want ≥ 0.95", id, tt.open, v)
				}
			}
			// The opened device reads its source side, carries nothing,
			// and counted no trip.
			if ia := byRole(t, s.device(t, tt.open), profile.RoleCurrentA); ia != 0 {
				t.Errorf("open %s carries %v A", tt.open, ia)
			}
			if d := s.device(t, tt.open); d.Profile.Name == "feeder-rtu" {
				if st := s.switchState(t, tt.open); st != [4]float64{0, 0, 0, 0} {
					t.Errorf("%s closed, lockout, shots, trips = %v, want all 0", tt.open, st)
				}
			}

			s.mustInject(t, Event{Action: ActionClose, Target: tt.open})
			s.mustAdvance(t, 7*time.Second)
			for _, id := range devices {
				if v := s.phasePU(t, id); min(v[0], v[1], v[2]) < 0.95 {
					t.Errorf("%s after closing %s: %v pu, want ≥ 0.95", id, tt.open, v)
				}
			}
		})
	}
}

// trace samples a device's switch state every second from 0 to n s.
func (s *Sim) trace(t testing.TB, id string, n int) [][4]float64 {
	t.Helper()
	out := make([][4]float64, 0, n+1)
	for k := 0; k <= n; k++ {
		s.mustAdvance(t, time.Duration(k)*time.Second)
		out = append(out, s.switchState(t, id))
	}
	return out
}

// expand turns "from second k on, state x" into a per-second trace.
func expand(n int, steps map[int][4]float64) [][4]float64 {
	out := make([][4]float64, n+1)
	var cur [4]float64
	for k := 0; k <= n; k++ {
		if st, ok := steps[k]; ok {
			cur = st
		}
		out[k] = cur
	}
	return out
}

func diffTrace(got, want [][4]float64) string {
	var b strings.Builder
	for k := range want {
		if got[k] != want[k] {
			fmt.Fprintf(&b, "\n  %2ds: closed, lockout, shots, trips = %v, want %v", k, got[k], want[k])
		}
	}
	return b.String()
}

func TestRecloserSequence(t *testing.T) {
	closed := [4]float64{1, 0, 0, 0}
	tests := []struct {
		name  string
		f1    string
		fault Event
		want  map[int][4]float64
	}{
		{
			// Default intervals 2s, 5s, 15s: trips at 10, 12, 17 and 32 s;
			// each reclose trips again at once, so no sample sees it closed.
			name:  "permanent, default sequence",
			fault: Event{Action: ActionFault, Target: "F1-S2", Permanent: ptr(true)},
			want:  map[int][4]float64{0: closed, 10: {0, 0, 0, 1}, 12: {0, 0, 1, 2}, 17: {0, 0, 2, 3}, 32: {0, 1, 3, 4}},
		},
		{
			name:  "permanent, two recloses",
			f1:    "    reclose: {intervals: [3s, 4s]}",
			fault: Event{Action: ActionFault, Target: "F1-S2", Permanent: ptr(true)},
			want:  map[int][4]float64{0: closed, 10: {0, 0, 0, 1}, 13: {0, 0, 1, 2}, 17: {0, 1, 2, 3}},
		},
		{
			// With a trip delay the samples between a reclose and the
			// next trip see the recloser closed into the fault.
			name:  "permanent, trip delay",
			f1:    "    trip_delay: 1500ms\n    reclose: {intervals: [2s, 5s]}",
			fault: Event{Action: ActionFault, Target: "F1-S2", Permanent: ptr(true)},
			// Trips at 11.5, 15 and 21.5 s; recloses at 13.5 and 20 s.
			want: map[int][4]float64{0: closed, 12: {0, 0, 0, 1}, 14: {1, 0, 1, 1}, 15: {0, 0, 1, 2}, 20: {1, 0, 2, 2}, 22: {0, 1, 2, 3}},
		},
		{
			// A temporary fault clears once its section is dead: the first
			// reclose holds, and the shot counter returns to 0 after the
			// reset time.
			name:  "temporary, clears on first reclose",
			f1:    "    reclose: {intervals: [2s, 5s, 15s], reset: 20s}",
			fault: Event{Action: ActionFault, Target: "F1-S2"},
			want:  map[int][4]float64{0: closed, 10: {0, 0, 0, 1}, 12: {1, 0, 1, 1}, 32: {1, 0, 0, 1}},
		},
		{
			// Clearing 6 s after it began, the fault is still there at the
			// reclose at 12 s, gone at the one at 17 s.
			name:  "temporary, clear_after",
			f1:    "    reclose: {intervals: [2s, 5s, 15s], reset: 20s}",
			fault: Event{Action: ActionFault, Target: "F1-S2", ClearAfter: dur(6 * time.Second)},
			want:  map[int][4]float64{0: closed, 10: {0, 0, 0, 1}, 12: {0, 0, 1, 2}, 17: {1, 0, 2, 2}, 37: {1, 0, 0, 2}},
		},
	}
	const n = 45
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFeederSim(t, tt.f1)
			ev := tt.fault
			ev.After = dur(10 * time.Second)
			s.mustInject(t, ev)
			got := s.trace(t, "F1-REC", n)
			if d := diffTrace(got, expand(n, tt.want)); d != "" {
				t.Fatalf("F1-REC over time:%s", d)
			}
			// The breaker upstream never operated.
			if v := byRole(t, s.device(t, "F1-BRK"), profile.RoleBreakerClosed); v != 1 {
				t.Fatalf("F1-BRK breaker_closed = %v, want 1", v)
			}
		})
	}
}

// TestLockoutDeenergizes checks the state below a locked-out recloser and a
// close command that resets it.
func TestLockoutDeenergizes(t *testing.T) {
	s := newFeederSim(t, "    reclose: {intervals: [1s, 1s]}")
	s.mustInject(t, Event{Action: ActionFault, Target: "F1-S3", Permanent: ptr(true), After: dur(5 * time.Second)})
	s.mustAdvance(t, 20*time.Second)
	// Trips at 5 and 6 s; F1-SEC (counts 2) opened after the second, so
	// the reclose at 7 s held: the recloser is closed, the sectionalizer
	// locked out.
	if st := s.switchState(t, "F1-REC"); st != [4]float64{1, 0, 2, 2} {
		t.Fatalf("F1-REC closed, lockout, shots, trips = %v, want [1 0 2 2]", st)
	}
	if st := s.switchState(t, "F1-SEC"); st != [4]float64{0, 1, 0, 0} {
		t.Fatalf("F1-SEC closed, lockout, shots, trips = %v, want [0 1 0 0]", st)
	}
	if v := s.phasePU(t, "F1-MTR"); max(v[0], v[1], v[2]) >= 0.1 {
		t.Fatalf("F1-MTR below the open sectionalizer reads %v pu", v)
	}
	if v := s.phasePU(t, "F1-SNS"); min(v[0], v[1], v[2]) < 0.95 {
		t.Fatalf("F1-SNS above the sectionalizer reads %v pu", v)
	}
	// Closing the sectionalizer into the permanent fault trips the
	// recloser; its reset time (60 s) has not passed since the last
	// reclose, so it has no shots left: lockout.
	s.mustInject(t, Event{Action: ActionClose, Target: "F1-SEC"})
	s.mustAdvance(t, 21*time.Second)
	if st := s.switchState(t, "F1-REC"); st != [4]float64{0, 1, 2, 3} {
		t.Fatalf("F1-REC after closing into the fault = %v, want [0 1 2 3]", st)
	}
	for _, id := range []string{"F1-SNS", "F1-SEC", "F1-MTR"} {
		if v := s.phasePU(t, id); max(v[0], v[1], v[2]) >= 0.1 {
			t.Errorf("%s below the locked-out recloser reads %v pu", id, v)
		}
	}
	// A crew clears the fault and closes the recloser: lockout and shots
	// reset, the trip counter stays.
	s.mustInject(t, Event{Action: ActionClearFault, Target: "F1-S3"})
	s.mustInject(t, Event{Action: ActionClose, Target: "F1-REC"})
	s.mustAdvance(t, 22*time.Second)
	if st := s.switchState(t, "F1-REC"); st != [4]float64{1, 0, 0, 3} {
		t.Fatalf("F1-REC after close = %v, want [1 0 0 3]", st)
	}
	if v := s.phasePU(t, "F1-MTR"); min(v[0], v[1], v[2]) < 0.95 {
		t.Fatalf("F1-MTR after restoration reads %v pu", v)
	}
}

func TestBreakerTripsAboveFirstRecloser(t *testing.T) {
	s := newFeederSim(t, "")
	s.mustInject(t, Event{Action: ActionFault, Target: "F1-S1", Permanent: ptr(true), After: dur(3 * time.Second)})
	s.mustAdvance(t, 30*time.Second)
	if v := byRole(t, s.device(t, "F1-BRK"), profile.RoleBreakerClosed); v != 0 {
		t.Fatalf("F1-BRK breaker_closed = %v, want 0: a breaker does not reclose unless told", v)
	}
	if st := s.switchState(t, "F1-REC"); st != [4]float64{1, 0, 0, 0} {
		t.Fatalf("F1-REC = %v, want closed and untouched", st)
	}
	for _, id := range []string{"F1-REC", "F1-SNS", "F1-SEC", "F1-MTR"} {
		if v := s.phasePU(t, id); max(v[0], v[1], v[2]) >= 0.1 {
			t.Errorf("%s below the tripped breaker reads %v pu", id, v)
		}
	}
	states := s.Feeders()
	if n := states[0].Nodes[0]; n.ID != "F1-BRK" || *n.Closed || !n.Lockout || n.Trips != 1 {
		t.Fatalf("F1-BRK node state %+v", n)
	}
}

func TestFaultCurrentAndSagDuringTripDelay(t *testing.T) {
	s := newFeederSim(t, "    trip_delay: 1500ms")
	s.mustInject(t, Event{Action: ActionFault, Target: "F1-S2", Phases: "A", Current: ptr(3000.0), Permanent: ptr(true), After: dur(2 * time.Second)})
	s.mustAdvance(t, 3*time.Second) // the fault began at 2s; the trip comes at 3.5s
	for _, id := range []string{"F1-BRK", "F1-REC"} {
		d := s.device(t, id)
		ia, ib := byRole(t, d, profile.RoleCurrentA), byRole(t, d, profile.RoleCurrentB)
		if ia < 3000 || ib > 200 {
			t.Errorf("%s ia = %v, ib = %v: want ia ≥ 3000 A of fault current, ib load only", id, ia, ib)
		}
	}
	if v := s.phasePU(t, "F1-BRK"); v[0] > 0.62 || v[0] < 0.58 || v[1] < 0.95 {
		t.Errorf("F1-BRK during the fault: %v pu, want phase A at 0.6 and B normal", v)
	}
	s.mustAdvance(t, 4*time.Second)
	if st := s.switchState(t, "F1-REC"); st != [4]float64{0, 0, 0, 1} {
		t.Fatalf("F1-REC after the trip delay = %v, want [0 0 0 1]", st)
	}
	if ia := byRole(t, s.device(t, "F1-BRK"), profile.RoleCurrentA); ia > 200 {
		t.Fatalf("F1-BRK ia = %v after the trip, want load only", ia)
	}
}

func TestSagAndSwell(t *testing.T) {
	tests := []struct {
		name   string
		ev     Event
		from   int // first second it shows
		to     int // first second it is over
		exact  []string
		below  []string // downstream of the exact one: a little less
		normal []string
		phases string // the phases it changes
	}{
		{
			name: "sag on a feeder, one phase",
			ev:   Event{Action: ActionSag, Target: "F1", Magnitude: ptr(0.7), Duration: dur(10 * time.Second), Phases: "B"},
			from: 20, to: 30,
			exact: []string{"F1-BRK"}, below: []string{"F1-REC", "F1-SEC", "F1-MTR"}, normal: []string{"F2-BRK", "F2-MTR"},
			phases: "B",
		},
		{
			name: "swell on a section, three phases",
			ev:   Event{Action: ActionSwell, Target: "F1-S2", Magnitude: ptr(1.15), Duration: dur(5 * time.Second)},
			from: 20, to: 25,
			exact: []string{"F1-SNS", "F1-SEC"}, below: []string{"F1-MTR"}, normal: []string{"F1-BRK", "F1-REC", "F2-BRK"},
			phases: "ABC",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFeederSim(t, "")
			ev := tt.ev
			ev.After = dur(time.Duration(tt.from) * time.Second)
			s.mustInject(t, ev)
			m := *tt.ev.Magnitude
			for k := 0; k <= tt.to+2; k++ {
				s.mustAdvance(t, time.Duration(k)*time.Second)
				on := k >= tt.from && k < tt.to
				for ph := range 3 {
					for _, id := range tt.exact {
						v := s.phasePU(t, id)[ph]
						switch {
						case on && strings.ContainsRune(tt.phases, rune('A'+ph)) && math.Abs(v-m) > 1e-4:
							t.Errorf("%ds %s phase %d = %.5f pu, want %v", k, id, ph, v, m)
						case (!on || !strings.ContainsRune(tt.phases, rune('A'+ph))) && (v < 0.95 || v > 1.05):
							t.Errorf("%ds %s phase %d = %.5f pu, want normal", k, id, ph, v)
						}
					}
					for _, id := range tt.below {
						v := s.phasePU(t, id)[ph]
						switch {
						case on && strings.ContainsRune(tt.phases, rune('A'+ph)) && (v >= m || v < m-0.03):
							t.Errorf("%ds %s phase %d = %.5f pu, want a little below %v", k, id, ph, v, m)
						case (!on || !strings.ContainsRune(tt.phases, rune('A'+ph))) && (v < 0.95 || v > 1.05):
							t.Errorf("%ds %s phase %d = %.5f pu, want normal", k, id, ph, v)
						}
					}
					for _, id := range tt.normal {
						if v := s.phasePU(t, id)[ph]; v < 0.95 || v > 1.05 {
							t.Errorf("%ds %s phase %d = %.5f pu, want normal", k, id, ph, v)
						}
					}
				}
			}
		})
	}
}

// TestTieBackfeeds locks out F1's recloser, isolates the faulted section
// and closes the tie: the stretch behind the sectionalizer is fed by F2.
func TestTieBackfeeds(t *testing.T) {
	s := newFeederSim(t, "    reclose: {intervals: []}")
	s.mustInject(t, Event{Action: ActionFault, Target: "F1-S2", Permanent: ptr(true), After: dur(2 * time.Second)})
	s.mustInject(t, Event{Action: ActionOpen, Target: "F1-SEC", After: dur(5 * time.Second)})
	s.mustInject(t, Event{Action: ActionClose, Target: "TIE", After: dur(6 * time.Second)})
	s.mustAdvance(t, 5*time.Second)
	if v := s.phasePU(t, "F1-MTR"); max(v[0], v[1], v[2]) >= 0.1 {
		t.Fatalf("F1-MTR before the tie closed: %v pu", v)
	}
	brk := byRole(t, s.device(t, "F2-BRK"), profile.RoleCurrentA)
	s.mustAdvance(t, 6*time.Second)
	if v := s.phasePU(t, "F1-MTR"); min(v[0], v[1], v[2]) < 0.95 {
		t.Fatalf("F1-MTR fed through the tie: %v pu, want ≥ 0.95", v)
	}
	if v := s.phasePU(t, "F1-SNS"); max(v[0], v[1], v[2]) >= 0.1 {
		t.Fatalf("F1-SNS on the faulted section: %v pu, want dead", v)
	}
	// F2 now carries F1-S3 and F1-MTR too: 520 kW × 0.85 more.
	tie := byRole(t, s.device(t, "TIE"), profile.RoleCurrentA)
	if want := 520 * 0.85 * 1000 / (3 * 7200 * 0.95); math.Abs(tie-want) > 0.05*want {
		t.Fatalf("TIE ia = %v, want %v ±5%%", tie, want)
	}
	if now := byRole(t, s.device(t, "F2-BRK"), profile.RoleCurrentA); now < brk+tie-3 {
		t.Fatalf("F2-BRK ia = %v, was %v before the tie closed; want about %v more", now, brk, tie)
	}
	// F1-SEC's own section (below its open switch) is back-fed too; its
	// device measures on the dead side.
	var fedBy []string
	for _, n := range s.Feeders()[0].Nodes {
		fedBy = append(fedBy, n.ID+":"+n.FedBy)
	}
	want := []string{"F1-BRK:", "F1-S1:", "F1-REC:", "F1-S2:", "F1-SNS:", "F1-SEC:F2", "F1-S3:F2", "F1-MTR:F2"}
	if !slices.Equal(fedBy, want) {
		t.Fatalf("fed by %v, want %v", fedBy, want)
	}
}

func ptr[T any](v T) *T { return &v }

func dur(d time.Duration) *Duration {
	v := Duration(d)
	return &v
}

// TestMeterLineToLine: a meter's vab, vbc and vca come from its phase
// phasors, so a sag on phase B lowers vab and vbc but not vca.
func TestMeterLineToLine(t *testing.T) {
	s := newFeederSim(t, "")
	s.mustInject(t, Event{Action: ActionSag, Target: "F1", Magnitude: ptr(0.7), Duration: dur(10 * time.Second), Phases: "B", After: dur(2 * time.Second)})
	for _, at := range []time.Duration{time.Second, 3 * time.Second} {
		s.mustAdvance(t, at)
		d := s.device(t, "F1-MTR")
		var ln [3]float64
		for k, name := range []string{"van", "vbn", "vcn"} {
			ln[k] = simtest.Value(t, d, name)
		}
		for k, name := range []string{"vab", "vbc", "vca"} {
			a, b := ln[k], ln[(k+1)%3]
			want := float64(float32(math.Sqrt(a*a + b*b + a*b)))
			if got := simtest.Value(t, d, name); math.Abs(got-want) > 1e-3 {
				t.Errorf("%v: %s = %v, want sqrt(%v² + %v² + %[3]v·%[4]v) = %v", at, name, got, a, b, want)
			}
		}
		vab, vbc, vca := simtest.Value(t, d, "vab"), simtest.Value(t, d, "vbc"), simtest.Value(t, d, "vca")
		if at == 3*time.Second && !(vab < 0.9*vca && vbc < 0.9*vca) {
			t.Errorf("phase B at 0.7 pu: vab %v, vbc %v, vca %v; want vab and vbc well below vca", vab, vbc, vca)
		}
	}
}

// TestNoCurrentPowerFactor: a device that carries no current has no power
// factor: an int16 point (the SEL-751A's) reports 0, a float32 one (the
// PM5100's) NaN; a device carrying load reports the load's.
func TestNoCurrentPowerFactor(t *testing.T) {
	s := newFeederSim(t, "")
	s.mustInject(t, Event{Action: ActionOpen, Target: "F2-BRK", After: dur(2 * time.Second)})
	s.mustAdvance(t, time.Second)
	if pf := byRole(t, s.device(t, "F2-BRK"), profile.RolePowerFactor); pf < 0.9 || pf > 1 {
		t.Errorf("closed F2-BRK pf = %v, want the load's (about 0.95)", pf)
	}
	s.mustAdvance(t, 3*time.Second)
	if pf := byRole(t, s.device(t, "F2-BRK"), profile.RolePowerFactor); pf != 0 {
		t.Errorf("open F2-BRK (int16 pf) pf = %v, want 0", pf)
	}
	if pf := byRole(t, s.device(t, "F2-MTR"), profile.RolePowerFactor); !math.IsNaN(pf) {
		t.Errorf("F2-MTR behind the open breaker (float32 pf) pf = %v, want NaN", pf)
	}
}
