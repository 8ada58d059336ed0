package devsrv

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sim/simtest"
)

// serve runs an endpoint until the test ends and checks it stops cleanly.
func serve(t *testing.T, e *Endpoint) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve %s: %v", e.URL, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("serve %s did not return after cancel", e.URL)
		}
	})
}

// fleet is a meter, a relay and a recloser controller with plausible,
// distinct values (so exact comparisons mean something).
type fleet struct {
	meter, relay, recloser *Device
}

func newFleet(t *testing.T) fleet {
	t.Helper()
	f := fleet{
		meter:    newTestDevice(t, "F101-MTR", 1, simtest.PM5100()),
		relay:    newTestDevice(t, "F101-BRK", 2, simtest.SEL751A()),
		recloser: newTestDevice(t, "F101-REC", 3, simtest.FeederRTU()),
	}
	for _, d := range []*Device{f.meter, f.relay, f.recloser} {
		if err := fill(d); err != nil {
			t.Fatal(err)
		}
	}
	simtest.MustSet(t, f.relay, map[string]float64{"ia": -12}) // a negative int16
	if err := f.recloser.SetString("model", "RC10"); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f fleet) units(t *testing.T) *Units {
	t.Helper()
	u, err := NewUnits(f.meter, f.relay, f.recloser)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// checkClientReads reads every kind of value through c and compares it with
// what the devices hold.
func checkClientReads(t *testing.T, c *modbus.ModbusClient, f fleet) {
	t.Helper()
	if err := c.SetUnitId(1); err != nil {
		t.Fatal(err)
	}
	fl, err := c.ReadFloat32s(3027, 3, modbus.HOLDING_REGISTER)
	if err != nil {
		t.Fatalf("read meter voltages: %v", err)
	}
	for i, p := range []string{"van", "vbn", "vcn"} {
		if want := simtest.Value(t, f.meter, p); float64(fl[i]) != want {
			t.Errorf("meter %s = %v over modbus, device holds %v", p, fl[i], want)
		}
	}
	e, err := c.ReadUint64(3203, modbus.HOLDING_REGISTER)
	if err != nil || float64(e) != simtest.Value(t, f.meter, "energy") {
		t.Errorf("meter energy = %d (%v), device holds %v", e, err, simtest.Value(t, f.meter, "energy"))
	}

	if err := c.SetUnitId(2); err != nil {
		t.Fatal(err)
	}
	regs, err := c.ReadRegisters(650, 3, modbus.HOLDING_REGISTER)
	if err != nil {
		t.Fatalf("read relay currents: %v", err)
	}
	for i, p := range []string{"ia", "ib", "ic"} {
		if got, want := float64(int16(regs[i])), simtest.Value(t, f.relay, p); got != want {
			t.Errorf("relay %s = %v over modbus, device holds %v", p, got, want)
		}
	}
	regs, err = c.ReadRegisters(688, 2, modbus.HOLDING_REGISTER)
	if err != nil {
		t.Fatalf("read relay pf and frequency: %v", err)
	}
	if got, want := float64(int16(regs[0]))*0.01, simtest.Value(t, f.relay, "pf"); math.Abs(got-want) > 1e-12 {
		t.Errorf("relay pf = %v over modbus, device holds %v", got, want)
	}
	if got, want := float64(regs[1])*0.01, simtest.Value(t, f.relay, "freq"); math.Abs(got-want) > 1e-12 {
		t.Errorf("relay freq = %v over modbus, device holds %v", got, want)
	}
	if _, err := c.ReadRegisters(640, 1, modbus.HOLDING_REGISTER); err != modbus.ErrIllegalDataAddress {
		t.Errorf("read below the relay's map: %v, want %v", err, modbus.ErrIllegalDataAddress)
	}

	if err := c.SetUnitId(3); err != nil {
		t.Fatal(err)
	}
	coils, err := c.ReadCoils(0, 3)
	if err != nil || len(coils) != 3 || !coils[0] || coils[1] || coils[2] {
		t.Errorf("recloser coils = %v (%v), want [true false false]", coils, err)
	}
	di, err := c.ReadDiscreteInputs(0, 1)
	if err != nil || len(di) != 1 || di[0] {
		t.Errorf("recloser lockout = %v (%v), want [false]", di, err)
	}
	in, err := c.ReadRegisters(10, 1, modbus.INPUT_REGISTER)
	if err != nil || float64(in[0])*0.1 != simtest.Value(t, f.recloser, "ia") {
		t.Errorf("recloser ia = %v (%v), device holds %v", in, err, simtest.Value(t, f.recloser, "ia"))
	}
	// Writes reach the device.
	if err := c.WriteRegister(110, 0xFFF6); err != nil {
		t.Fatalf("write setpoint: %v", err)
	}
	if got := simtest.Value(t, f.recloser, "setpoint"); got != -1 {
		t.Errorf("setpoint = %v after writing -10 ×0.1, want -1", got)
	}
	if err := c.WriteCoil(2, true); err != nil {
		t.Fatalf("write coil: %v", err)
	}
	if got := simtest.Value(t, f.recloser, "remote_enabled"); got != 1 {
		t.Errorf("remote_enabled = %v after writing the coil, want 1", got)
	}
	if err := c.WriteRegister(105, 1); err != modbus.ErrIllegalDataAddress {
		t.Errorf("write into a gap: %v, want %v", err, modbus.ErrIllegalDataAddress)
	}
}

func newTestDevice(t testing.TB, id string, unit uint8, p *profile.Profile) *Device {
	t.Helper()
	d, err := NewDevice(id, unit, p)
	if err != nil {
		t.Fatalf("NewDevice(%s): %v", id, err)
	}
	return d
}

// readings are plausible values of a healthy 7.2 kV feeder point for each
// test profile, distinct per point so that a read of the wrong register
// shows. (The physics layer's Steady driver fills devices in rtusim; this
// package must not import it.)
var readings = map[string]map[string]float64{
	"sel751a": {
		"ia": 201, "ib": 198, "ic": 203, "van": 7195, "vbn": 7210, "vcn": 7188,
		"kw": 4120, "pf": 0.95, "freq": 60.01, "breaker_closed": 1, "trip_alarm": 0,
	},
	"pm5100": {
		"ia": 201.25, "ib": 198.5, "ic": 203.75, "in": 4.5,
		"vab": 12470.5, "vbc": 12468.25, "vca": 12471.75,
		"van": 7199.5, "vbn": 7201.25, "vcn": 7198.75, "vln_avg": 7199.75,
		"kw": 4123.5, "kvar": 1355.25, "kva": 4340.5, "pf": 0.95, "freq": 60.01,
		"energy": 1234567890,
	},
	"feeder-rtu": {
		"va": 7199.9, "vb": 7201.2, "vc": 7198.7, "ia": 201.3, "ib": 198.6, "ic": 203.4,
		"kw": 4123.5, "freq": 60.01, "closed": 1, "remote_enabled": 0, "lockout": 0,
		"shots": 0, "trips": 0, "setpoint": 0,
	},
}

// fill writes d's readings in one update.
func fill(d *Device) error {
	vals, ok := readings[d.Profile.Name]
	if !ok {
		return fmt.Errorf("fill %s: no readings for profile %s", d.ID, d.Profile.Name)
	}
	return d.Update(func(tx Tx) error {
		for _, name := range slices.Sorted(maps.Keys(vals)) {
			if err := tx.SetValue(name, vals[name]); err != nil {
				return fmt.Errorf("fill %s: %w", d.ID, err)
			}
		}
		return nil
	})
}
