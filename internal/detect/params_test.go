package detect

import (
	"math"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

func TestParamsValidate(t *testing.T) {
	const prefix = "validate detection params: "
	tests := []struct {
		name   string
		mutate func(p *Params)
		want   string
	}{
		{"defaults", func(*Params) {}, ""},
		{"persistence 1s is allowed", func(p *Params) { p.BandPersistence = time.Second }, ""},
		{"persistence 10m is allowed", func(p *Params) { p.BandPersistence = 10 * time.Minute }, ""},
		{"persistence too short", func(p *Params) { p.BandPersistence = 500 * time.Millisecond },
			prefix + "BandPersistence 500ms outside 1s..10m"},
		{"persistence too long", func(p *Params) { p.BandPersistence = 11 * time.Minute },
			prefix + "BandPersistence 11m0s outside 1s..10m"},
		{"ranges crossed", func(p *Params) { p.RangeB.Low = 0.96 },
			prefix + "ranges must satisfy 0 < RangeB.Low <= RangeA.Low < 1 < RangeA.High <= RangeB.High, got A 0.95..1.05 B 0.96..1.0583"},
		{"band hysteresis negative", func(p *Params) { p.BandHysteresis = -0.01 },
			prefix + "BandHysteresis -0.01 must be >= 0 and keep 1 pu strictly inside Range A shrunk by it"},
		{"sag threshold above 1", func(p *Params) { p.SagThreshold = 1.01 },
			prefix + "thresholds must satisfy 0 < InterruptionThreshold < SagThreshold < 1 < SwellThreshold, got 0.1, 1.01, 1.1\n" +
				"Hysteresis 0.02 must be >= 0, keep the sag and swell ends on their side of 1 pu and the interruption end at or below SagThreshold"},
		{"hysteresis too wide", func(p *Params) { p.Hysteresis = 0.2 },
			prefix + "Hysteresis 0.2 must be >= 0, keep the sag and swell ends on their side of 1 pu and the interruption end at or below SagThreshold"},
		{"undervoltage min above sag", func(p *Params) { p.UndervoltageMin = 0.95 },
			prefix + "UndervoltageMin 0.95 must be in InterruptionThreshold..SagThreshold"},
		{"overvoltage max below swell", func(p *Params) { p.OvervoltageMax = 1.05 },
			prefix + "OvervoltageMax 1.05 must be above SwellThreshold 1.1"},
		{"durations out of order", func(p *Params) { p.MomentaryMax = 2 * time.Minute },
			prefix + "durations must satisfy 0 < InstantaneousMax <= MomentaryMax < TemporaryMax, got 500ms, 2m0s, 1m0s"},
		{"reclose window zero", func(p *Params) { p.RecloseWindow = 0; p.LockoutAfter = 0 },
			prefix + "RecloseWindow 0s must be > 0\nLockoutAfter 0s must be in (0, RecloseWindow]"},
		{"comm loss polls zero", func(p *Params) { p.CommLossPolls = 0 },
			prefix + "CommLossPolls 0 must be >= 1"},
		{"comm loss time zero", func(p *Params) { p.CommLossAfter = 0 },
			prefix + "CommLossAfter 0s must be > 0"},
		{"sustained zero", func(p *Params) { p.SustainedAfter = 0 },
			prefix + "SustainedAfter 0s must be > 0"},
		{"NaN threshold", func(p *Params) { p.SagThreshold = math.NaN() },
			"SagThreshold NaN is not a finite number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams()
			tc.mutate(&p)
			err := p.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("Validate() = %q, want %q", got, tc.want)
			}
		})
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
	if _, err := New(p, nil, emit); err == nil || err.Error() != "validate detection params: CommLossPolls 0 must be >= 1" {
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
