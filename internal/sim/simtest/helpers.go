package simtest

import (
	"io"
	"log"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
)

// Client opens a simonvetter/modbus client on url (rtu settings are
// 19200 8N1) and closes it when the test ends.
func Client(t testing.TB, url string) *modbus.ModbusClient {
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

// Valuer is a device's point reader (devsrv.Device).
type Valuer interface {
	Value(point string) (float64, error)
}

// Value returns d's point or fails the test.
func Value(t testing.TB, d Valuer, point string) float64 {
	t.Helper()
	v, err := d.Value(point)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Setter is a device's point writer (devsrv.Device).
type Setter interface {
	SetValue(point string, v float64) error
}

// MustSet writes vals into d or fails the test.
func MustSet(t testing.TB, d Setter, vals map[string]float64) {
	t.Helper()
	for name, v := range vals {
		if err := d.SetValue(name, v); err != nil {
			t.Fatalf("SetValue(%s, %g): %v", name, v, err)
		}
	}
}
