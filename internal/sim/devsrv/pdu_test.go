package devsrv

import (
	"bytes"
	"testing"

	"github.com/feederd/feederd/internal/sim/simtest"
)

// pduDevice is a feeder-rtu at unit 5 with known values in every table.
func pduDevice(t *testing.T) (*Units, *Device) {
	t.Helper()
	d := newTestDevice(t, "R1", 5, simtest.FeederRTU())
	simtest.MustSet(t, d, map[string]float64{
		"va":             7200.5, // int32 CDAB ×0.1: 72005 = 0x00011945
		"vb":             -1,     // -10 = 0xFFFFFFF6
		"ia":             200.3,  // 2003 = 0x07D3
		"closed":         1,
		"remote_enabled": 1,
		"lockout":        1,
		"shots":          2,
		"trips":          70000, // 0x00011170
	})
	if err := d.SetString("model", "RC10"); err != nil {
		t.Fatal(err)
	}
	u, err := NewUnits(d)
	if err != nil {
		t.Fatal(err)
	}
	return u, d
}

func TestAppendResponse(t *testing.T) {
	tests := []struct {
		name  string
		unit  uint8
		req   string
		want  string
		after map[string]float64 // point values after the request
	}{
		{"read input registers", 5, "04 0000 0006", "04 0C 1945 0001 FFF6 FFFF 0000 0000", nil},
		{"read input across a gap", 5, "04 0004 0008", "04 10 0000 0000 0000 0000 0000 0000 07D3 0000", nil},
		{"read input past the last point", 5, "04 001E 0002", "84 02", nil},
		{"read holding", 5, "03 0064 0003", "03 06 0002 0001 1170", nil},
		{"read holding string", 5, "03 00C8 0004", "03 08 5243 3130 0000 0000", nil},
		{"read holding below the first point", 5, "03 0063 0001", "83 02", nil},
		{"read holding quantity 0", 5, "03 0064 0000", "83 03", nil},
		{"read holding quantity 126", 5, "03 0064 007E", "83 03", nil},
		{"read holding past 65535", 5, "03 FFFF 0002", "83 02", nil},
		{"read holding short request", 5, "03 0064 00", "83 03", nil},
		{"read coils", 5, "01 0000 0003", "01 01 05", nil},
		{"read coils quantity 2001", 5, "01 0000 07D1", "81 03", nil},
		{"read discrete inputs", 5, "02 0000 0001", "02 01 01", nil},
		{"read discrete inputs past the map", 5, "02 0000 0002", "82 02", nil},
		{"unknown function", 5, "2B 0E 01 00", "AB 01", nil},
		{"unknown unit", 9, "03 0064 0001", "83 0B", nil},
		{"write single register", 5, "06 006E 0064", "06 006E 0064", map[string]float64{"setpoint": 10}},
		{"write single register in a gap", 5, "06 0069 0001", "86 02", nil},
		{"write input register", 5, "06 0000 0001", "86 02", map[string]float64{"va": 7200.5}},
		{"write single coil off", 5, "05 0002 0000", "05 0002 0000", map[string]float64{"remote_enabled": 0, "closed": 1}},
		{"write single coil bad value", 5, "05 0002 1234", "85 03", map[string]float64{"remote_enabled": 1}},
		{"write multiple coils", 5, "0F 0000 0001 01 00", "0F 0000 0001", map[string]float64{"closed": 0}},
		{"write multiple coils over a gap", 5, "0F 0000 0003 01 04", "8F 02", map[string]float64{"closed": 1}},
		{"write multiple coils byte count wrong", 5, "0F 0000 0001 02 00 00", "8F 03", nil},
		{"write multiple registers", 5, "10 0065 0002 04 0000 0005", "10 0065 0002", map[string]float64{"trips": 5}},
		{"write multiple registers byte count wrong", 5, "10 0065 0002 03 0000 05", "90 03", map[string]float64{"trips": 70000}},
		{"write multiple registers quantity 124", 5, "10 0065 007C F8" + repeatHex("0000", 124), "90 03", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, d := pduDevice(t)
			got := u.AppendResponse([]byte{0xAA}, tt.unit, unhex(t, tt.req))
			want := append([]byte{0xAA}, unhex(t, tt.want)...)
			if !bytes.Equal(got, want) {
				t.Fatalf("response % X, want % X", got[1:], want[1:])
			}
			for name, v := range tt.after {
				if got, err := d.Value(name); err != nil || got != v {
					t.Errorf("%s = %v (%v), want %v", name, got, err, v)
				}
			}
		})
	}
}

func repeatHex(s string, n int) string { return string(bytes.Repeat([]byte(s), n)) }

func BenchmarkAppendResponse(b *testing.B) {
	d := newTestDevice(b, "M", 1, simtest.PM5100())
	if err := fill(d); err != nil {
		b.Fatal(err)
	}
	u, err := NewUnits(d)
	if err != nil {
		b.Fatal(err)
	}
	req := []byte{3, 0x0B, 0xB7, 0, 0x26} // 2999..3036: currents to V L-N average
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		out = u.AppendResponse(out[:0], 1, req)
	}
	if len(out) != 2+2*0x26 {
		b.Fatalf("response length %d", len(out))
	}
}
