package devsrv

import (
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sim/simtest"
)

func TestDeviceValues(t *testing.T) {
	tests := []struct {
		prof  *profile.Profile
		point string
		set   float64
		want  float64
	}{
		{simtest.SEL751A(), "van", 7210, 7210},
		{simtest.SEL751A(), "ia", -12, -12},
		{simtest.SEL751A(), "pf", 0.95, 0.95},
		{simtest.SEL751A(), "freq", 60.01, 60.01},
		{simtest.SEL751A(), "kw", 40000, 32767}, // int16 clamps
		{simtest.SEL751A(), "breaker_closed", 1, 1},
		{simtest.PM5100(), "van", 7210.3, float64(float32(7210.3))},
		{simtest.PM5100(), "energy", 1234567890123, 1234567890123},
		{simtest.FeederRTU(), "va", -7200.5, -7200.5},
		{simtest.FeederRTU(), "ia", 200.3, 200.3},
		{simtest.FeederRTU(), "kw", 4104.25, 4104.25},
		{simtest.FeederRTU(), "closed", 1, 1},
		{simtest.FeederRTU(), "lockout", 1, 1},
		{simtest.FeederRTU(), "trips", 70000, 70000},
	}
	for _, tt := range tests {
		t.Run(tt.prof.Name+"/"+tt.point, func(t *testing.T) {
			d := newTestDevice(t, "D", 1, tt.prof)
			if err := d.SetValue(tt.point, tt.set); err != nil {
				t.Fatal(err)
			}
			got, err := d.Value(tt.point)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-tt.want) > 1e-9*math.Abs(tt.want) {
				t.Fatalf("Value = %v, want %v", got, tt.want)
			}
			if v := d.Values()[tt.point]; v != got {
				t.Fatalf("Values()[%s] = %v, want %v", tt.point, v, got)
			}
		})
	}
}

func TestDeviceBitsShareRegister(t *testing.T) {
	d := newTestDevice(t, "S", 1, simtest.SEL751A())
	simtest.MustSet(t, d, map[string]float64{"breaker_closed": 1, "trip_alarm": 1})
	regs, err := d.ReadRegisters(profile.Holding, 1806, 1)
	if err != nil || regs[0] != 0b1001 {
		t.Fatalf("register 1806 = %04b (%v), want 1001", regs, err)
	}
	simtest.MustSet(t, d, map[string]float64{"breaker_closed": 0})
	if v, _ := d.Value("trip_alarm"); v != 1 {
		t.Fatalf("trip_alarm = %v after clearing breaker_closed, want 1", v)
	}
}

func TestDeviceStringsAndErrors(t *testing.T) {
	d := newTestDevice(t, "R1", 1, simtest.FeederRTU())
	if err := d.SetString("model", "RECLOSER-X"); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Text("model"); err != nil || got != "RECLOSER" {
		t.Fatalf("Text(model) = %q, %v; want RECLOSER (4 registers)", got, err)
	}
	if got := d.Values()["model"]; got != "RECLOSER" {
		t.Fatalf("Values()[model] = %v", got)
	}
	errTests := []struct {
		name string
		err  error
		want string
	}{
		{"unknown point", d.SetValue("nope", 1), `device R1 (profile feeder-rtu) has no point "nope"`},
		{"number into string", d.SetValue("model", 1), "set model on R1: a string point takes SetString"},
		{"string into number", d.SetString("va", "x"), "set va on R1: SetString needs a string point, not int32"},
		{"value of string", func() error { _, err := d.Value("model"); return err }(), "read model on R1: a string point has no number"},
		{"text of number", func() error { _, err := d.Text("va"); return err }(), "read va on R1: not a string point"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil || tt.err.Error() != tt.want {
				t.Fatalf("error %v, want %q", tt.err, tt.want)
			}
		})
	}
}

func TestDeviceNaNValue(t *testing.T) {
	d := newTestDevice(t, "M", 1, simtest.PM5100())
	simtest.MustSet(t, d, map[string]float64{"van": math.NaN()})
	v, ok := d.Values()["van"]
	if !ok || v != nil {
		t.Fatalf("Values()[van] = %v, %v; want nil for NaN", v, ok)
	}
}

func TestNewDeviceErrors(t *testing.T) {
	h := profile.Holding
	tests := []struct {
		name   string
		points []profile.Point
		want   string
	}{
		{"coil not bool", []profile.Point{{Name: "c", RegType: profile.Coil, Type: profile.Uint16}}, "build device X: point c: a coil point must be bool, not uint16"},
		{"bool in holding", []profile.Point{{Name: "b", RegType: h, Type: profile.Bool}}, "build device X: point b: bool needs a coil or discrete input, not holding"},
		{"past 65535", []profile.Point{{Name: "f", RegType: h, Address: 65535, Type: profile.Float32}}, "build device X: point f: holding 65535..65536 runs past 65535"},
		{"twice", []profile.Point{{Name: "a", RegType: h, Type: profile.Int16}, {Name: "a", RegType: h, Address: 4, Type: profile.Int16}}, "build device X: point a: defined twice"},
		{"empty string", []profile.Point{{Name: "s", RegType: h, Type: profile.String}}, "build device X: point s: occupies no register"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewDevice("X", 1, &profile.Profile{Name: "p", Points: tt.points})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestReadRegistersRange(t *testing.T) {
	d := newTestDevice(t, "S", 1, simtest.SEL751A())
	simtest.MustSet(t, d, map[string]float64{"ia": 201, "van": 7200, "freq": 60})
	tests := []struct {
		addr, qty uint16
		want      []uint16
		err       error
	}{
		{650, 1, []uint16{201}, nil},
		{652, 4, []uint16{0, 0, 0, 0}, nil}, // ic then a gap
		{674, 3, []uint16{7200, 0, 0}, nil}, // vbn is 0 until set
		{689, 1, []uint16{6000}, nil},
		{649, 2, nil, modbus.ErrIllegalDataAddress},
		{1806, 2, nil, modbus.ErrIllegalDataAddress},
		{1806, 1, []uint16{0}, nil},
	}
	for _, tt := range tests {
		got, err := d.ReadRegisters(profile.Holding, tt.addr, tt.qty)
		if !errors.Is(err, tt.err) || len(got) != len(tt.want) {
			t.Fatalf("read %d+%d = %v, %v; want %v, %v", tt.addr, tt.qty, got, err, tt.want, tt.err)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Fatalf("read %d+%d = %v, want %v", tt.addr, tt.qty, got, tt.want)
			}
		}
	}
	if _, err := d.ReadRegisters(profile.Input, 0, 1); err != modbus.ErrIllegalDataAddress {
		t.Fatalf("read of an empty table: %v, want illegal data address", err)
	}
}

// TestUpdateAtomic: readers never see a float split between two updates,
// nor one phase of a tick with another phase of the next.
func TestUpdateAtomic(t *testing.T) {
	d := newTestDevice(t, "M", 1, simtest.PM5100())
	a, b := float32(7200.125), float32(-1.5e-3) // every word differs
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			v := float64(a)
			if i%2 == 1 {
				v = float64(b)
			}
			_ = d.Update(func(tx Tx) error {
				_ = tx.SetValue("van", v)
				return tx.SetValue("vbn", v)
			})
		}
	})
	p := &simtest.PM5100().Points[7] // van
	for range 2000 {
		regs, err := d.ReadRegisters(profile.Holding, 3027, 4)
		if err != nil {
			t.Fatal(err)
		}
		van, vbn := p.Decode(regs[:2]), p.Decode(regs[2:])
		if van != vbn || (van != float64(a) && van != float64(b) && van != 0) {
			t.Fatalf("torn read: van %v vbn %v", van, vbn)
		}
	}
	close(stop)
	wg.Wait()
}
