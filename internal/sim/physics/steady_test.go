package physics

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sim/devsrv"
	"github.com/feederd/feederd/internal/sim/simtest"
)

func within(t *testing.T, d *devsrv.Device, point string, lo, hi float64) float64 {
	t.Helper()
	v, err := d.Value(point)
	if err != nil {
		t.Fatal(err)
	}
	if v < lo || v > hi {
		t.Errorf("%s = %v, want %v..%v", point, v, lo, hi)
	}
	return v
}

func exactly(t *testing.T, d *devsrv.Device, point string, want float64) {
	t.Helper()
	if v, err := d.Value(point); err != nil || v != want {
		t.Errorf("%s = %v (%v), want %v", point, v, err, want)
	}
}

func TestFillSEL751A(t *testing.T) {
	d := newTestDevice(t, "F101-BRK", 1, simtest.SEL751A())
	if err := fill(d, 7200, 1); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"van", "vbn", "vcn"} {
		within(t, d, p, 7200*0.97, 7200*1.03)
	}
	for _, p := range []string{"ia", "ib", "ic"} {
		within(t, d, p, 160, 240)
	}
	within(t, d, "pf", 0.93, 0.97)
	within(t, d, "freq", 59.95, 60.05)
	within(t, d, "kw", 4104*0.97, 4104*1.03) // 3 × 7200 V × 200 A × 0.95
	exactly(t, d, "breaker_closed", 1)
	exactly(t, d, "trip_alarm", 0) // no role: left alone
}

func TestFillPM5100Secondary(t *testing.T) {
	d := newTestDevice(t, "F101-MTR", 1, simtest.PM5100())
	s, err := NewSteady(d, SteadyConfig{Nominal: 120, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.Tick(t0); err != nil {
		t.Fatal(err)
	}
	within(t, d, "van", 116.4, 123.6)
	within(t, d, "vab", 120*math.Sqrt(3)*0.97, 120*math.Sqrt(3)*1.03) // line-to-line by name
	within(t, d, "vln_avg", 116.4, 123.6)
	within(t, d, "in", 5, 15)
	within(t, d, "kw", 68.4*0.97, 68.4*1.03)
	within(t, d, "kva", 72*0.999, 72*1.001)
	within(t, d, "kvar", 72*math.Sqrt(1-0.95*0.95)*0.8, 72*math.Sqrt(1-0.95*0.95)*1.2)
	e0 := within(t, d, "energy", 1e9, 2e9)
	if err := s.Tick(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	e1, _ := d.Value("energy")
	if inc := e1 - e0; inc < 68400*0.97 || inc > 68400*1.03 {
		t.Fatalf("energy grew by %v Wh in an hour, want about 68400", inc)
	}
	// A clock that steps back adds nothing.
	if err := s.Tick(t0); err != nil {
		t.Fatal(err)
	}
	if e2, _ := d.Value("energy"); e2 < e1 {
		t.Fatalf("energy went back from %v to %v", e1, e2)
	}
}

func TestFillFeederRTU(t *testing.T) {
	d := newTestDevice(t, "F101-REC", 2, simtest.FeederRTU())
	if err := fill(d, 7200, 1); err != nil {
		t.Fatal(err)
	}
	within(t, d, "va", 7200*0.97, 7200*1.03)
	within(t, d, "ia", 160, 240)
	exactly(t, d, "closed", 1)
	exactly(t, d, "remote_enabled", 0)
	exactly(t, d, "lockout", 0)
	exactly(t, d, "shots", 0)
	exactly(t, d, "trips", 0)
	exactly(t, d, "setpoint", 0)
}

func TestFillLineToLine(t *testing.T) {
	p := &profile.Profile{Name: "ll", LineToLine: true, Points: []profile.Point{
		{Name: "vab", RegType: profile.Holding, Address: 0, Type: profile.Float32, Unit: "kV", Role: profile.RoleVoltageA},
		{Name: "mw", RegType: profile.Holding, Address: 2, Type: profile.Float32, Unit: "MW", Role: profile.RoleActivePower},
	}}
	d := newTestDevice(t, "LL", 1, p)
	if err := fill(d, 12.47, 1); err != nil {
		t.Fatal(err)
	}
	within(t, d, "vab", 12.47*0.97, 12.47*1.03)
	want := math.Sqrt(3) * 12470 * 200 * 0.95 / 1e6 // MW
	within(t, d, "mw", want*0.97, want*1.03)
}

func registers(t *testing.T, d *devsrv.Device) []uint16 {
	t.Helper()
	regs, err := d.ReadRegisters(profile.Holding, 2999, 112)
	if err != nil {
		t.Fatal(err)
	}
	return regs
}

func TestSteadyDeterministic(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	run := func(id string, seed uint64) []uint16 {
		d := newTestDevice(t, id, 1, simtest.PM5100())
		s, err := NewSteady(d, SteadyConfig{Nominal: 7200, Seed: seed, Fixed: map[string]float64{"vcn": 7210}})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := s.Tick(t0.Add(time.Duration(i) * time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		exactly(t, d, "vcn", 7210)
		return registers(t, d)
	}
	a, b := run("M1", 1), run("M1", 1)
	if !slices.Equal(a, b) {
		t.Fatal("same seed and device gave different registers")
	}
	if slices.Equal(a, run("M2", 1)) {
		t.Fatal("two devices of one seed got the same noise")
	}
	if slices.Equal(a, run("M1", 2)) {
		t.Fatal("two seeds gave the same noise")
	}
}

func TestNewSteadyErrors(t *testing.T) {
	d := newTestDevice(t, "M", 1, simtest.PM5100())
	tests := []struct {
		name string
		cfg  SteadyConfig
		want string
	}{
		{"unknown fixed point", SteadyConfig{Nominal: 120, Fixed: map[string]float64{"vx": 1}}, `drive M: fixed value: device M (profile pm5100) has no point "vx"`},
		{"power factor above 1", SteadyConfig{Nominal: 120, PowerFactor: 1.2}, "drive M: nominal 120, current 200, power factor 1.2, frequency 60: negative or power factor above 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewSteady(d, tt.cfg); err == nil || err.Error() != tt.want {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestPrefixFactor(t *testing.T) {
	tests := []struct {
		unit, base string
		want       float64
	}{
		{"kW", "W", 1e3}, {"MW", "W", 1e6}, {"W", "W", 1}, {"kvar", "var", 1e3}, {"kVAr", "var", 1e3},
		{"MWh", "Wh", 1e6}, {"kV", "V", 1e3}, {"", "W", 1}, {"W", "Wh", 1},
	}
	for _, tt := range tests {
		if got := prefixFactor(tt.unit, tt.base); got != tt.want {
			t.Errorf("prefixFactor(%q, %q) = %v, want %v", tt.unit, tt.base, got, tt.want)
		}
	}
}

// fill sets plausible values once: a Steady driver's first tick.
func fill(dev *devsrv.Device, nominal float64, seed uint64) error {
	s, err := NewSteady(dev, SteadyConfig{Nominal: nominal, Seed: seed})
	if err != nil {
		return err
	}
	return s.Tick(time.Time{})
}
