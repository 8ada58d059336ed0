package influx

import (
	"math"
	"testing"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// testModel has two devices with float32, int16, bit, float64 and string
// points; the second device has names that need every kind of escaping.
func testModel(measurement string) *config.Model {
	points := []profile.Point{
		{Name: "Va", RegType: profile.Holding, Address: 0, Type: profile.Float32, Unit: "V", Role: profile.RoleVoltageA},
		{Name: "Ia", RegType: profile.Holding, Address: 2, Type: profile.Int16, Unit: "A", Role: profile.RoleCurrentA},
		{Name: "breaker", RegType: profile.Holding, Address: 3, Type: profile.Bit, BitPos: 3, Role: profile.RoleBreakerClosed},
		{Name: "energy", RegType: profile.Input, Address: 10, Type: profile.Float64, Unit: "Wh"},
		{Name: "serial", RegType: profile.Holding, Address: 20, Type: profile.String, Length: 4},
		{Name: "P kW", RegType: profile.Holding, Address: 30, Type: profile.Int32, Scale: 0.5, Unit: "kW"},
	}
	m := &config.Model{Influx: config.Influx{Measurement: measurement}}
	m.Devices = []*config.Device{
		{Index: 0, ID: "F101-R1", Feeder: "F101", Points: points,
			Labels: map[string]string{"substation": "North Yard", "area": "n"}},
		{Index: 1, ID: `R 2,x=y"q"\z√é`, Feeder: "F1,02", Points: points,
			Labels: map[string]string{"region": "Süd=ost", "device": "ignored", "empty": ""}},
	}
	return m
}

func TestAppendEscaping(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		measurement string
		tag         string
		field       string
	}{
		{"plain", "abc", "abc", "abc", `k="abc"`},
		{"space", "a b", `a\ b`, `a\ b`, `k="a b"`},
		{"comma", "a,b", `a\,b`, `a\,b`, `k="a,b"`},
		{"equals", "a=b", `a=b`, `a\=b`, `k="a=b"`},
		{"quote", `a"b`, `a"b`, `a"b`, `k="a\"b"`},
		{"backslash inside", `a\b`, `a\b`, `a\b`, `k="a\\b"`},
		{"backslash before comma", `a\,b`, `a\\,b`, `a\\,b`, `k="a\\,b"`},
		{"trailing backslash", `ab\\`, `ab`, `ab`, `k="ab\\\\"`},
		{"newline", "a\nb\rc", `a\ b\ c`, `a\ b\ c`, "k=\"a\nb\rc\""},
		{"unicode", "Süd√é 东", `Süd√é\ 东`, `Süd√é\ 东`, `k="Süd√é 东"`},
		{"empty", "", "", "", `k=""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EscapeMeasurement(tt.in); got != tt.measurement {
				t.Errorf("EscapeMeasurement(%q) = %q, want %q", tt.in, got, tt.measurement)
			}
			if got := EscapeTag(tt.in); got != tt.tag {
				t.Errorf("EscapeTag(%q) = %q, want %q", tt.in, got, tt.tag)
			}
			if got := string(AppendStringField(nil, "k", tt.in)); got != tt.field {
				t.Errorf("AppendStringField(k, %q) = %q, want %q", tt.in, got, tt.field)
			}
		})
	}
	if got := string(AppendStringField([]byte("x "), "a key,=", "v")); got != `x a\ key\,\=="v"` {
		t.Errorf("AppendStringField escapes the key: got %q", got)
	}
}

func TestEncoderAppend(t *testing.T) {
	const ts = int64(1_700_000_000_123_456_789) // ns; ms = 1700000000123
	enc := NewEncoder(testModel(""))
	custom := NewEncoder(testModel("grid meas"))
	tests := []struct {
		name string
		enc  *Encoder
		s    sample.Sample
		want string
	}{
		{"float32 shortest form", enc, sample.Sample{Time: ts, Value: float64(float32(230.1)), Device: 0, Point: 0},
			`feeder_point,area=n,device=F101-R1,feeder=F101,point=Va,role=voltage_a,substation=North\ Yard,unit=V value=230.1,quality="good" 1700000000123` + "\n"},
		{"int16 negative", enc, sample.Sample{Time: ts, Value: -1234, Device: 0, Point: 1},
			`feeder_point,area=n,device=F101-R1,feeder=F101,point=Ia,role=current_a,substation=North\ Yard,unit=A value=-1234,quality="good" 1700000000123` + "\n"},
		{"bit without unit", enc, sample.Sample{Time: ts, Value: 1, Device: 0, Point: 2},
			`feeder_point,area=n,device=F101-R1,feeder=F101,point=breaker,role=breaker_closed,substation=North\ Yard value=1,quality="good" 1700000000123` + "\n"},
		{"float64 tiny exponent", enc, sample.Sample{Time: ts, Value: 1e-7, Device: 0, Point: 3},
			`feeder_point,area=n,device=F101-R1,feeder=F101,point=energy,substation=North\ Yard,unit=Wh value=1e-07,quality="good" 1700000000123` + "\n"},
		{"float64 huge exponent", enc, sample.Sample{Time: ts, Value: 1e21, Device: 0, Point: 3},
			`feeder_point,area=n,device=F101-R1,feeder=F101,point=energy,substation=North\ Yard,unit=Wh value=1e+21,quality="good" 1700000000123` + "\n"},
		{"scaled int32 keeps float64 form", enc, sample.Sample{Time: ts, Value: math.Nextafter(0.3, 1), Device: 0, Point: 5},
			`feeder_point,area=n,device=F101-R1,feeder=F101,point=P\ kW,substation=North\ Yard,unit=kW value=0.30000000000000004,quality="good" 1700000000123` + "\n"},
		{"timeout has no value", enc, sample.Sample{Time: ts, Value: 5, Device: 0, Point: 0, Quality: sample.Timeout},
			`feeder_point,area=n,device=F101-R1,feeder=F101,point=Va,role=voltage_a,substation=North\ Yard,unit=V quality="timeout" 1700000000123` + "\n"},
		{"exception", enc, sample.Sample{Time: ts, Device: 0, Point: 1, Quality: sample.Exception},
			`feeder_point,area=n,device=F101-R1,feeder=F101,point=Ia,role=current_a,substation=North\ Yard,unit=A quality="exception" 1700000000123` + "\n"},
		{"stale", enc, sample.Sample{Time: ts, Device: 0, Point: 1, Quality: sample.Stale},
			`feeder_point,area=n,device=F101-R1,feeder=F101,point=Ia,role=current_a,substation=North\ Yard,unit=A quality="stale" 1700000000123` + "\n"},
		{"unknown quality", enc, sample.Sample{Time: ts, Device: 0, Point: 1, Quality: 200},
			`feeder_point,area=n,device=F101-R1,feeder=F101,point=Ia,role=current_a,substation=North\ Yard,unit=A quality="unknown" 1700000000123` + "\n"},
		{"good NaN becomes invalid", enc, sample.Sample{Time: ts, Value: math.NaN(), Device: 0, Point: 0},
			`feeder_point,area=n,device=F101-R1,feeder=F101,point=Va,role=voltage_a,substation=North\ Yard,unit=V quality="invalid" 1700000000123` + "\n"},
		{"good Inf becomes invalid", enc, sample.Sample{Time: ts, Value: math.Inf(-1), Device: 0, Point: 3},
			`feeder_point,area=n,device=F101-R1,feeder=F101,point=energy,substation=North\ Yard,unit=Wh quality="invalid" 1700000000123` + "\n"},
		{"escaped names, label named device ignored, empty label left out", enc, sample.Sample{Time: ts, Value: 50, Device: 1, Point: 1},
			`feeder_point,device=R\ 2\,x\=y"q"\z√é,feeder=F1\,02,point=Ia,region=Süd\=ost,role=current_a,unit=A value=50,quality="good" 1700000000123` + "\n"},
		{"custom measurement escaped", custom, sample.Sample{Time: ts, Value: 2, Device: 0, Point: 1},
			`grid\ meas,area=n,device=F101-R1,feeder=F101,point=Ia,role=current_a,substation=North\ Yard,unit=A value=2,quality="good" 1700000000123` + "\n"},
		{"device status ok", enc, sample.Sample{Time: ts, Value: 1, Device: 0, Point: sample.NoPoint, Flags: sample.DeviceStatus | sample.EndOfPoll, Seq: 42},
			`feeder_poll,area=n,device=F101-R1,feeder=F101,substation=North\ Yard ok=1i,seq=42i 1700000000123` + "\n"},
		{"device status failed", enc, sample.Sample{Time: ts, Value: 0, Device: 1, Point: sample.NoPoint, Flags: sample.DeviceStatus, Seq: 4294967295, Quality: sample.Timeout},
			`feeder_poll,device=R\ 2\,x\=y"q"\z√é,feeder=F1\,02,region=Süd\=ost ok=0i,seq=4294967295i 1700000000123` + "\n"},
		{"time before 1970 floors", enc, sample.Sample{Time: -1, Value: 1, Device: 0, Point: 2},
			`feeder_point,area=n,device=F101-R1,feeder=F101,point=breaker,role=breaker_closed,substation=North\ Yard value=1,quality="good" -1` + "\n"},
		{"string point has no line", enc, sample.Sample{Time: ts, Device: 0, Point: 4}, ""},
		{"point out of range", enc, sample.Sample{Time: ts, Device: 0, Point: 6}, ""},
		{"device out of range", enc, sample.Sample{Time: ts, Device: 2, Point: 0}, ""},
		{"device status out of range", enc, sample.Sample{Time: ts, Device: 9, Point: sample.NoPoint, Flags: sample.DeviceStatus}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("previous\n")
			got := tt.enc.Append(prefix, &tt.s)
			if string(got[:len(prefix)]) != "previous\n" {
				t.Fatalf("Append changed what dst held: %q", got)
			}
			if string(got[len(prefix):]) != tt.want {
				t.Errorf("Append:\n got %q\nwant %q", got[len(prefix):], tt.want)
			}
		})
	}
}

func BenchmarkDecodeAppend(b *testing.B) {
	m := testModel("")
	enc := NewEncoder(m)
	p := &m.Devices[0].Points[0] // float32
	raw := make([]uint16, 2)
	p.Encode(230.1, raw)
	s := sample.Sample{Time: 1_700_000_000_000_000_000, Device: 0, Point: 0}
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		s.Value = p.Decode(raw)
		s.Time += 1e9
		dst = enc.Append(dst[:0], &s)
	}
	if len(dst) == 0 {
		b.Fatal("nothing appended")
	}
}
