package detect

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// TestParamsValidate: each rule reports itself on its field, quoting the
// fields it compares, every broken rule at once.
func TestParamsValidate(t *testing.T) {
	type fe struct {
		fields []string
		msg    string
	}
	tests := []struct {
		name   string
		mutate func(p *Params)
		want   []fe
	}{
		{"defaults", func(*Params) {}, nil},
		{"persistence 1s is allowed", func(p *Params) { p.BandPersistence = time.Second }, nil},
		{"persistence 10m is allowed", func(p *Params) { p.BandPersistence = 10 * time.Minute }, nil},
		{"range a inverted", func(p *Params) { p.RangeA = Range{1.05, 0.95} },
			[]fe{{[]string{"range_a"}, "low 1.05 is not below high 0.95"}}},
		{"range a low above 1", func(p *Params) { p.RangeA.Low = 1 },
			[]fe{{[]string{"range_a.low"}, "1 must be below 1 pu"}}},
		{"range a high below 1", func(p *Params) { p.RangeA.High = 0.99 },
			[]fe{{[]string{"range_a.high"}, "0.99 must be above 1 pu"}}},
		{"range b low zero", func(p *Params) { p.RangeB.Low = 0 },
			[]fe{{[]string{"range_b.low"}, "must be > 0, got 0"}}},
		{"range b inverted", func(p *Params) { p.RangeB = Range{1.1, 0.9} },
			[]fe{{[]string{"range_b"}, "low 1.1 is not below high 0.9"}}},
		{"range b narrower than a", func(p *Params) { p.RangeB.Low = 0.96 },
			[]fe{{[]string{"range_b", "range_a"}, "range_b 0.96..1.0583 does not contain range_a 0.95..1.05"}}},
		{"band hysteresis negative", func(p *Params) { p.BandHysteresis = -0.01 },
			[]fe{{[]string{"band_hysteresis"}, "must be >= 0, got -0.01"}}},
		{"band hysteresis too wide", func(p *Params) { p.BandHysteresis = 0.05 },
			[]fe{{[]string{"band_hysteresis", "range_a"}, "band_hysteresis 0.05 must be less than the distance from 1 pu to either end of range_a 0.95..1.05"}}},
		{"sag threshold at 1", func(p *Params) { p.SagThreshold = 1 },
			[]fe{{[]string{"sag_threshold"}, "1 must be below 1 pu"}}},
		{"swell threshold at 1", func(p *Params) { p.SwellThreshold = 1 },
			[]fe{{[]string{"swell_threshold"}, "1 must be above 1 pu"}}},
		{"interruption threshold zero", func(p *Params) { p.InterruptionThreshold = 0; p.UndervoltageMin = 0.5 },
			[]fe{{[]string{"interruption_threshold"}, "must be > 0, got 0"}}},
		{"interruption threshold at sag", func(p *Params) { p.InterruptionThreshold = 0.9 },
			[]fe{{[]string{"interruption_threshold", "sag_threshold"}, "interruption_threshold 0.9 must be below sag_threshold 0.9"}}},
		{"hysteresis negative", func(p *Params) { p.Hysteresis = -0.01 },
			[]fe{{[]string{"hysteresis"}, "must be >= 0, got -0.01"}}},
		{"hysteresis past 1 from the sag", func(p *Params) { p.Hysteresis = 0.1 },
			[]fe{{[]string{"hysteresis", "sag_threshold"}, "sag_threshold + hysteresis (0.9 + 0.1) must stay below 1 pu"}}},
		{"hysteresis past 1 from the swell", func(p *Params) { p.SagThreshold = 0.5; p.UndervoltageMin = 0.4; p.Hysteresis = 0.1 },
			[]fe{{[]string{"hysteresis", "swell_threshold"}, "swell_threshold - hysteresis (1.1 - 0.1) must stay above 1 pu"}}},
		{"hysteresis past the sag from the interruption", func(p *Params) { p.InterruptionThreshold = 0.89; p.UndervoltageMin = 0.89 },
			[]fe{{[]string{"hysteresis", "interruption_threshold", "sag_threshold"}, "interruption_threshold + hysteresis (0.89 + 0.02) must not exceed sag_threshold 0.9"}}},
		{"undervoltage min above sag", func(p *Params) { p.UndervoltageMin = 0.95 },
			[]fe{{[]string{"undervoltage_min", "interruption_threshold", "sag_threshold"}, "undervoltage_min 0.95 must be at least interruption_threshold 0.1 and below sag_threshold 0.9"}}},
		{"overvoltage max below swell", func(p *Params) { p.OvervoltageMax = 1.05 },
			[]fe{{[]string{"overvoltage_max", "swell_threshold"}, "overvoltage_max 1.05 must be above swell_threshold 1.1"}}},
		{"persistence too short", func(p *Params) { p.BandPersistence = 500 * time.Millisecond },
			[]fe{{[]string{"band_persistence"}, "500ms is outside 1s..10m"}}},
		{"persistence too long", func(p *Params) { p.BandPersistence = 11 * time.Minute },
			[]fe{{[]string{"band_persistence"}, "11m0s is outside 1s..10m"}}},
		{"instantaneous max zero", func(p *Params) { p.InstantaneousMax = 0 },
			[]fe{{[]string{"instantaneous_max"}, "must be > 0, got 0s"}}},
		{"instantaneous max above momentary", func(p *Params) { p.InstantaneousMax = 4 * time.Second },
			[]fe{{[]string{"instantaneous_max", "momentary_max"}, "instantaneous_max 4s must not exceed momentary_max 3s"}}},
		{"momentary max past temporary", func(p *Params) { p.MomentaryMax = 2 * time.Minute },
			[]fe{{[]string{"momentary_max", "temporary_max"}, "momentary_max 2m0s must be shorter than temporary_max 1m0s"}}},
		{"reclose window zero", func(p *Params) { p.RecloseWindow = 0 },
			[]fe{{[]string{"reclose_window"}, "must be > 0, got 0s"}}},
		{"lockout after zero", func(p *Params) { p.LockoutAfter = 0 },
			[]fe{{[]string{"lockout_after"}, "must be > 0, got 0s"}}},
		{"lockout after past the reclose window", func(p *Params) { p.RecloseWindow = 30 * time.Second },
			[]fe{{[]string{"lockout_after", "reclose_window"}, "lockout_after 1m0s must not exceed reclose_window 30s"}}},
		{"comm loss polls zero", func(p *Params) { p.CommLossPolls = 0 },
			[]fe{{[]string{"comm_loss_polls"}, "must be >= 1, got 0"}}},
		{"comm loss time zero", func(p *Params) { p.CommLossAfter = 0 },
			[]fe{{[]string{"comm_loss_after"}, "must be > 0, got 0s"}}},
		{"sustained zero", func(p *Params) { p.SustainedAfter = 0 },
			[]fe{{[]string{"sustained_after"}, "must be > 0, got 0s"}}},
		{"every broken rule at once", func(p *Params) {
			p.RangeB.Low = 0
			p.SwellThreshold = 0.9
			p.InstantaneousMax = 0
			p.CommLossAfter = 0
			p.SustainedAfter = -time.Minute
		}, []fe{
			{[]string{"range_b.low"}, "must be > 0, got 0"},
			{[]string{"swell_threshold"}, "0.9 must be above 1 pu"},
			{[]string{"instantaneous_max"}, "must be > 0, got 0s"},
			{[]string{"comm_loss_after"}, "must be > 0, got 0s"},
			{[]string{"sustained_after"}, "must be > 0, got -1m0s"},
		}},
		// A rule quoting a value that is not a number is not reported:
		// sag_threshold breaks no rule by being NaN, hysteresis still does.
		{"NaN threshold", func(p *Params) { p.SagThreshold = math.NaN(); p.SwellThreshold = 1.01 },
			[]fe{{[]string{"sag_threshold"}, "must be a finite number, got NaN"},
				{[]string{"hysteresis", "swell_threshold"}, "swell_threshold - hysteresis (1.01 - 0.02) must stay above 1 pu"}}},
		{"infinite range end", func(p *Params) { p.RangeA.Low = math.Inf(-1); p.BandHysteresis = 0.06 },
			[]fe{{[]string{"range_a.low"}, "must be a finite number, got -Inf"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams()
			tc.mutate(&p)
			err := p.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Validate() = %v (%T), want Errors", err, err)
			}
			var got []fe
			for _, e := range errs {
				got = append(got, fe{e.Fields(), e.Err.Error()})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Validate() errors\n got %q\nwant %q", got, tc.want)
			}
			lines := make([]string, len(tc.want))
			for i, w := range tc.want {
				lines[i] = w.fields[0] + ": " + w.msg
			}
			if want := "validate detection params: " + strings.Join(lines, "\n"); err.Error() != want {
				t.Errorf("Validate() = %q, want %q", err, want)
			}
		})
	}
}

// TestParamsValidateSpec draws Params around the edges of every rule and
// checks that Validate rejects exactly those that break the orders of
// DOMAIN.md, written here as chains: the fine-grained rules that name one
// field each say no more and no less than these.
func TestParamsValidateSpec(t *testing.T) {
	spec := func(p Params) bool {
		a, b := p.RangeA, p.RangeB
		return 0 < b.Low && b.Low <= a.Low && a.Low < 1 && 1 < a.High && a.High <= b.High &&
			time.Second <= p.BandPersistence && p.BandPersistence <= 10*time.Minute &&
			p.BandHysteresis >= 0 && a.Low+p.BandHysteresis < 1 && a.High-p.BandHysteresis > 1 &&
			0 < p.InterruptionThreshold && p.InterruptionThreshold < p.SagThreshold && p.SagThreshold < 1 && 1 < p.SwellThreshold &&
			p.Hysteresis >= 0 && p.SagThreshold+p.Hysteresis < 1 && p.SwellThreshold-p.Hysteresis > 1 &&
			p.InterruptionThreshold+p.Hysteresis <= p.SagThreshold &&
			p.InterruptionThreshold <= p.UndervoltageMin && p.UndervoltageMin < p.SagThreshold &&
			p.OvervoltageMax > p.SwellThreshold &&
			0 < p.InstantaneousMax && p.InstantaneousMax <= p.MomentaryMax && p.MomentaryMax < p.TemporaryMax &&
			p.RecloseWindow > 0 && 0 < p.LockoutAfter && p.LockoutAfter <= p.RecloseWindow &&
			p.CommLossPolls >= 1 && p.CommLossAfter > 0 && p.SustainedAfter > 0
	}
	pick := func(r *rand.Rand, vs ...float64) float64 { return vs[r.IntN(len(vs))] }
	dur := func(r *rand.Rand, vs ...time.Duration) time.Duration { return vs[r.IntN(len(vs))] }
	draws := []func(r *rand.Rand, p *Params){
		func(r *rand.Rand, p *Params) { p.RangeA.Low = pick(r, 0.9, 0.95, 0.96, 0.999, 1, 1.05) },
		func(r *rand.Rand, p *Params) { p.RangeA.High = pick(r, 0.95, 1, 1.001, 1.04, 1.05, 1.06) },
		func(r *rand.Rand, p *Params) { p.RangeB.Low = pick(r, -0.1, 0, 0.9, 0.9167, 0.95, 0.96, 1.1) },
		func(r *rand.Rand, p *Params) { p.RangeB.High = pick(r, 0.9, 1.04, 1.05, 1.0583, 1.1) },
		func(r *rand.Rand, p *Params) { p.BandHysteresis = pick(r, -0.01, 0, 0.005, 0.04, 0.05, 0.06) },
		func(r *rand.Rand, p *Params) { p.SagThreshold = pick(r, 0.05, 0.1, 0.5, 0.8, 0.9, 0.97, 0.98, 1, 1.1) },
		func(r *rand.Rand, p *Params) { p.SwellThreshold = pick(r, 0.9, 1, 1.02, 1.03, 1.1, 1.2, 1.3) },
		func(r *rand.Rand, p *Params) {
			p.InterruptionThreshold = pick(r, -0.1, 0, 0.05, 0.1, 0.5, 0.8, 0.885, 0.9, 0.95)
		},
		func(r *rand.Rand, p *Params) { p.Hysteresis = pick(r, -0.01, 0, 0.02, 0.05, 0.1, 0.2) },
		func(r *rand.Rand, p *Params) { p.UndervoltageMin = pick(r, 0, 0.05, 0.1, 0.5, 0.8, 0.89, 0.9, 0.95) },
		func(r *rand.Rand, p *Params) { p.OvervoltageMax = pick(r, 1, 1.1, 1.15, 1.2, 1.5) },
		func(r *rand.Rand, p *Params) {
			p.BandPersistence = dur(r, 0, 999*time.Millisecond, time.Second, time.Minute, 10*time.Minute, 10*time.Minute+time.Second)
		},
		func(r *rand.Rand, p *Params) {
			p.InstantaneousMax = dur(r, -time.Second, 0, 100*time.Millisecond, 500*time.Millisecond, 3*time.Second, 4*time.Second)
		},
		func(r *rand.Rand, p *Params) {
			p.MomentaryMax = dur(r, 0, 400*time.Millisecond, 500*time.Millisecond, 3*time.Second, time.Minute, 2*time.Minute)
		},
		func(r *rand.Rand, p *Params) { p.TemporaryMax = dur(r, 0, 3*time.Second, 4*time.Second, time.Minute) },
		func(r *rand.Rand, p *Params) {
			p.RecloseWindow = dur(r, -time.Second, 0, 30*time.Second, time.Minute, 5*time.Minute)
		},
		func(r *rand.Rand, p *Params) {
			p.LockoutAfter = dur(r, 0, time.Second, time.Minute, 5*time.Minute, 6*time.Minute)
		},
		func(r *rand.Rand, p *Params) { p.CommLossPolls = r.IntN(4) - 1 },
		func(r *rand.Rand, p *Params) { p.CommLossAfter = dur(r, -time.Second, 0, 10*time.Second) },
		func(r *rand.Rand, p *Params) { p.SustainedAfter = dur(r, 0, time.Minute, 5*time.Minute) },
	}
	// Combinations on the edge of a rule that a random draw rarely makes.
	edges := []func(p *Params){
		func(p *Params) { p.InterruptionThreshold, p.UndervoltageMin = 0.885, 0.89 },
		func(p *Params) { p.InterruptionThreshold, p.UndervoltageMin = 0.87, 0.89 },
		func(p *Params) { p.RangeA.Low, p.BandHysteresis = 0.96, 0.04 },
		func(p *Params) { p.RangeA.Low, p.BandHysteresis = 0.96, 0.039 },
		func(p *Params) { p.RangeA.High, p.BandHysteresis = 1.04, 0.04 },
		func(p *Params) { p.InstantaneousMax = 3 * time.Second },
		func(p *Params) { p.LockoutAfter = 5 * time.Minute },
		func(p *Params) { p.UndervoltageMin = 0.1 },
		func(p *Params) { p.RangeB = Range{0.95, 1.05} },
		// The interruption ends exactly at the sag threshold (sums exact
		// in binary): allowed.
		func(p *Params) {
			p.InterruptionThreshold, p.Hysteresis, p.SagThreshold, p.UndervoltageMin = 0.625, 0.125, 0.75, 0.7
			p.SwellThreshold, p.OvervoltageMax = 1.25, 1.5
		},
	}
	r := rand.New(rand.NewPCG(1, 2))
	var accepted, rejected int
	for i := range 20000 + len(edges) {
		p := DefaultParams()
		if i < len(edges) {
			edges[i](&p)
		} else {
			for _, d := range draws {
				if r.IntN(6) == 0 {
					d(r, &p)
				}
			}
		}
		err := p.Validate()
		switch ok := spec(p); {
		case ok && err != nil:
			t.Fatalf("Validate rejects params the spec accepts: %v\n%+v", err, p)
		case !ok && err == nil:
			t.Fatalf("Validate accepts params the spec rejects:\n%+v", p)
		case ok:
			accepted++
		default:
			rejected++
		}
	}
	// Both outcomes must be common, or the draw tests little.
	t.Logf("%d accepted, %d rejected", accepted, rejected)
	if accepted < 1000 || rejected < 1000 {
		t.Errorf("%d accepted, %d rejected: the draw is lopsided", accepted, rejected)
	}
}

func TestNewErrors(t *testing.T) {
	ok := func(i uint32, up int) DeviceInfo { return devInfo(i, up, time.Second, rolesMeter1) }
	emit := func(*Event) {}
	tests := []struct {
		name    string
		devices []DeviceInfo
		emit    func(*Event)
		want    string
	}{
		{"nil emit", nil, nil, "new detector: emit is nil"},
		{"duplicate index", []DeviceInfo{ok(1, -1), ok(1, -1)}, emit, "new detector: device D1: index 1 given twice"},
		{"zero interval", []DeviceInfo{devInfo(0, -1, 0, rolesBL)}, emit, "new detector: device D0: poll interval 0s must be > 0"},
		{"no nominal", []DeviceInfo{{Index: 3, ID: "M3", Interval: time.Second, PTRatio: 1, PointRoles: rolesMeter1}}, emit,
			"new detector: device M3: nominal voltage 0 and pt ratio 1 must be > 0 for voltage points"},
		{"upstream loop", []DeviceInfo{ok(0, 2), ok(1, 0), ok(2, 1)}, emit, "new detector: device D0: upstream chain loops"},
		{"upstream itself", []DeviceInfo{ok(0, -1), ok(1, 1)}, emit, "new detector: device D1: upstream chain loops"},
		{"indexes too far apart", []DeviceInfo{ok(0, -1), ok(1<<24, -1)}, emit,
			"new detector: device indexes 0..16777216 span more than 16777216"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(DefaultParams(), tc.devices, tc.emit)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("New() error = %v, want %q", err, tc.want)
			}
		})
	}
	p := DefaultParams()
	p.CommLossPolls = 0
	if _, err := New(p, nil, emit); err == nil || err.Error() != "validate detection params: comm_loss_polls: must be >= 1, got 0" {
		t.Fatalf("New(bad params) error = %v", err)
	}
}

// TestForeignSamples: samples of devices outside the set and upstream
// devices outside the set are ignored.
func TestForeignSamples(t *testing.T) {
	var n int
	d, err := New(DefaultParams(), []DeviceInfo{devInfo(5, 2, time.Second, rolesBL), devInfo(7, 5, time.Second, rolesBL)},
		func(*Event) { n++ })
	if err != nil {
		t.Fatal(err)
	}
	for _, dev := range []uint32{0, 4, 6, 8, 1 << 31} {
		d.Process(&sample.Sample{Device: dev, Time: at(0), Point: sample.NoPoint, Flags: sample.EndOfPoll | sample.DeviceStatus})
	}
	d.Process(&sample.Sample{Device: 5, Time: at(0), Point: 99, Value: 1, Flags: sample.EndOfPoll})
	if st := d.Stats(); st != (Stats{Samples: 1, Polls: 1, Foreign: 5}) || n != 0 {
		t.Fatalf("stats = %+v, events %d", st, n)
	}
}

// TestPTRatio: secondary volts times the PT ratio over the primary nominal.
func TestPTRatio(t *testing.T) {
	var got []Event
	di := DeviceInfo{Index: 0, ID: "R", Upstream: -1, Nominal: 7200, PTRatio: 60, Interval: time.Second,
		PointRoles: []profile.Role{profile.RoleVoltageA}}
	d, err := New(DefaultParams(), []DeviceInfo{di}, func(e *Event) { got = append(got, *e) })
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []float64{120, 96, 120} { // 1.0, 0.8, 1.0 pu
		d.Process(&sample.Sample{Time: at(time.Duration(i) * time.Second), Value: v, Flags: sample.EndOfPoll})
	}
	if len(got) != 2 || got[1].Worst != 0.8 || got[1].WorstVolts != 5760 || got[1].Duration() != time.Second {
		t.Fatalf("events = %+v", got)
	}
	if got[0].Duration() != 0 {
		t.Fatalf("start Duration() = %v", got[0].Duration())
	}
}

func TestNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{KindRecloserSequence.String(), "recloser_sequence"},
		{KindDeEnergized.String(), "de_energized"},
		{Kind(200).String(), "unknown"},
		{StageInstant.String(), "instant"},
		{CategorySustainedInterruption.String(), "sustained_interruption"},
		{SeverityCritical.String(), "critical"},
		{OutcomeLockout.String(), "lockout"},
		{CauseUpstreamOpen.String(), "upstream_open"},
		{(PhaseA | PhaseC).String(), "AC"},
		{(FlagGap | FlagInferred).String(), "gap|inferred"},
		{BandOutsideB.String(), "outside_b"},
		{EnergyDeEnergized.String(), "de_energized"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	for k := KindNone; k < NumKinds; k++ {
		if k.String() == "unknown" {
			t.Errorf("kind %d has no name", k)
		}
	}
}
