package sim

import (
	"context"
	"io"
	"log"
	"math"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
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

// client opens a simonvetter/modbus client; rtu settings are 19200 8N1.
func client(t *testing.T, url string) *modbus.ModbusClient {
	t.Helper()
	c, err := modbus.NewClient(&modbus.ClientConfiguration{
		URL:      url,
		Speed:    19200,
		DataBits: 8,
		Parity:   modbus.PARITY_NONE,
		StopBits: 1,
		Timeout:  time.Second,
		Logger:   log.New(io.Discard, "", 0),
	})
	if err != nil {
		t.Fatalf("modbus client for %s: %v", url, err)
	}
	if err := c.Open(); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fleet is a meter, a relay and a recloser controller with plausible,
// noisy values (so exact comparisons mean something).
type fleet struct {
	meter, relay, recloser *Device
}

func newFleet(t *testing.T) fleet {
	t.Helper()
	f := fleet{
		meter:    newTestDevice(t, "F101-MTR", 1, pm5100()),
		relay:    newTestDevice(t, "F101-BRK", 2, sel751a()),
		recloser: newTestDevice(t, "F101-REC", 3, feederRTU()),
	}
	for i, d := range []*Device{f.meter, f.relay, f.recloser} {
		if err := Fill(d, 7200, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	mustSet(t, f.relay, map[string]float64{"ia": -12}) // a negative int16
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

func value(t *testing.T, d *Device, point string) float64 {
	t.Helper()
	v, err := d.Value(point)
	if err != nil {
		t.Fatal(err)
	}
	return v
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
		if want := value(t, f.meter, p); float64(fl[i]) != want {
			t.Errorf("meter %s = %v over modbus, device holds %v", p, fl[i], want)
		}
	}
	e, err := c.ReadUint64(3203, modbus.HOLDING_REGISTER)
	if err != nil || float64(e) != value(t, f.meter, "energy") {
		t.Errorf("meter energy = %d (%v), device holds %v", e, err, value(t, f.meter, "energy"))
	}

	if err := c.SetUnitId(2); err != nil {
		t.Fatal(err)
	}
	regs, err := c.ReadRegisters(650, 3, modbus.HOLDING_REGISTER)
	if err != nil {
		t.Fatalf("read relay currents: %v", err)
	}
	for i, p := range []string{"ia", "ib", "ic"} {
		if got, want := float64(int16(regs[i])), value(t, f.relay, p); got != want {
			t.Errorf("relay %s = %v over modbus, device holds %v", p, got, want)
		}
	}
	regs, err = c.ReadRegisters(688, 2, modbus.HOLDING_REGISTER)
	if err != nil {
		t.Fatalf("read relay pf and frequency: %v", err)
	}
	if got, want := float64(int16(regs[0]))*0.01, value(t, f.relay, "pf"); math.Abs(got-want) > 1e-12 {
		t.Errorf("relay pf = %v over modbus, device holds %v", got, want)
	}
	if got, want := float64(regs[1])*0.01, value(t, f.relay, "freq"); math.Abs(got-want) > 1e-12 {
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
	if err != nil || float64(in[0])*0.1 != value(t, f.recloser, "ia") {
		t.Errorf("recloser ia = %v (%v), device holds %v", in, err, value(t, f.recloser, "ia"))
	}
	// Writes reach the device.
	if err := c.WriteRegister(110, 0xFFF6); err != nil {
		t.Fatalf("write setpoint: %v", err)
	}
	if got := value(t, f.recloser, "setpoint"); got != -1 {
		t.Errorf("setpoint = %v after writing -10 ×0.1, want -1", got)
	}
	if err := c.WriteCoil(2, true); err != nil {
		t.Fatalf("write coil: %v", err)
	}
	if got := value(t, f.recloser, "remote_enabled"); got != 1 {
		t.Errorf("remote_enabled = %v after writing the coil, want 1", got)
	}
	if err := c.WriteRegister(105, 1); err != modbus.ErrIllegalDataAddress {
		t.Errorf("write into a gap: %v, want %v", err, modbus.ErrIllegalDataAddress)
	}
}
