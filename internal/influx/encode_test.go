package influx

import (
	"fmt"
	"math"
	"strings"
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

const encTime = int64(1_700_000_000_123_456_789) // ns; ms = 1700000000123

// pt is a point sample for devPoll.
func pt(point uint16, v float64, q sample.Quality) sample.Sample {
	return sample.Sample{Point: point, Value: v, Quality: q}
}

// devPoll returns a poll of device dev as the poller makes it: the point
// samples 5 ms before encTime, then the device-status sample at encTime,
// all with Seq seq.
func devPoll(dev, seq uint32, ok bool, points ...sample.Sample) []sample.Sample {
	out := make([]sample.Sample, 0, len(points)+1)
	for _, p := range points {
		p.Time, p.Device, p.Seq = encTime-5e6, dev, seq
		out = append(out, p)
	}
	status := sample.Sample{Time: encTime, Device: dev, Point: sample.NoPoint, Seq: seq, Flags: sample.DeviceStatus | sample.EndOfPoll}
	if ok {
		status.Value = 1
	}
	return append(out, status)
}

func TestEncoderAppend(t *testing.T) {
	const dev0 = `feeder_point,area=n,device=F101-R1,feeder=F101,substation=North\ Yard `
	const ms = " 1700000000123\n"
	enc := NewEncoder(testModel(""))
	good := devPoll(0, 42, true,
		pt(0, float64(float32(230.1)), sample.Good), pt(1, -1234, sample.Good), pt(2, 1, sample.Good),
		pt(3, 1e21, sample.Good), pt(4, 0, sample.Good), pt(5, math.Nextafter(0.3, 1), sample.Good))
	const goodLine = dev0 + `voltage_a=230.1,current_a=-1234,breaker_closed=1,energy=1e+21,P\ kW=0.30000000000000004,ok=1i,seq=42i` + ms
	all := func(q sample.Quality, ok bool) []sample.Sample {
		return devPoll(0, 7, ok, pt(0, 0, q), pt(1, 0, q), pt(2, 0, q), pt(3, 0, q), pt(4, 0, q), pt(5, 0, q))
	}
	tests := []struct {
		name  string
		enc   *Encoder
		calls [][]sample.Sample
		want  []string // what each call appends
	}{
		{"all good, float32 in its shortest form, float64 and scaled int32 in full", enc,
			[][]sample.Sample{good}, []string{goodLine}},
		{"one point exception", enc,
			[][]sample.Sample{devPoll(0, 43, true, pt(0, 7200.5, sample.Good), pt(1, 0, sample.Exception), pt(2, 0, sample.Good))},
			[]string{dev0 + `voltage_a=7200.5,current_a_q=1i,breaker_closed=0,ok=1i,seq=43i` + ms}},
		{"whole-device timeout", enc, [][]sample.Sample{all(sample.Timeout, false)},
			[]string{dev0 + `voltage_a_q=2i,current_a_q=2i,breaker_closed_q=2i,energy_q=2i,P\ kW_q=2i,ok=0i,seq=7i` + ms}},
		{"stale", enc, [][]sample.Sample{all(sample.Stale, false)},
			[]string{dev0 + `voltage_a_q=3i,current_a_q=3i,breaker_closed_q=3i,energy_q=3i,P\ kW_q=3i,ok=0i,seq=7i` + ms}},
		{"invalid: NaN, infinity, and as read", enc,
			[][]sample.Sample{devPoll(0, 8, true, pt(0, math.NaN(), sample.Good), pt(1, 5, sample.Good), pt(3, math.Inf(-1), sample.Good), pt(5, 0, sample.Invalid))},
			[]string{dev0 + `voltage_a_q=4i,current_a=5,energy_q=4i,P\ kW_q=4i,ok=1i,seq=8i` + ms}},
		{"unknown quality keeps its code", enc, [][]sample.Sample{devPoll(0, 9, true, pt(1, 5, 200))},
			[]string{dev0 + `current_a_q=200i,ok=1i,seq=9i` + ms}},
		{"float64 tiny exponent", enc, [][]sample.Sample{devPoll(0, 1, true, pt(3, 1e-7, sample.Good))},
			[]string{dev0 + `energy=1e-07,ok=1i,seq=1i` + ms}},
		{"escaped names, label named device ignored, empty label left out", enc,
			[][]sample.Sample{devPoll(1, 4294967295, true, pt(1, 50, sample.Good))},
			[]string{`feeder_point,device=R\ 2\,x\=y"q"\z√é,feeder=F1\,02,region=Süd\=ost current_a=50,ok=1i,seq=4294967295i` + ms}},
		{"custom measurement escaped", NewEncoder(testModel("grid meas")), [][]sample.Sample{devPoll(0, 2, true, pt(1, 2, sample.Good))},
			[]string{`grid\ meas,area=n,device=F101-R1,feeder=F101,substation=North\ Yard current_a=2,ok=1i,seq=2i` + ms}},
		{"poll split across two batches", enc, [][]sample.Sample{good[:2], good[2:5], good[5:]},
			[]string{"", "", goodLine}},
		{"split after the last point", enc, [][]sample.Sample{good[:6], good[6:]},
			[]string{"", goodLine}},
		{"two polls in one batch", enc, [][]sample.Sample{append(devPoll(1, 1, true, pt(1, 1, sample.Good)), good...)},
			[]string{`feeder_point,device=R\ 2\,x\=y"q"\z√é,feeder=F1\,02,region=Süd\=ost current_a=1,ok=1i,seq=1i` + ms + goodLine}},
		{"end lost: the part that came is written when the next poll starts", enc,
			[][]sample.Sample{good[:2], devPoll(0, 43, false, pt(1, 0, sample.Timeout))},
			[]string{"", dev0 + `voltage_a=230.1,current_a=-1234,seq=42i 1700000000118` + "\n" + dev0 + `current_a_q=2i,ok=0i,seq=43i` + ms}},
		{"start lost: the rest makes a line", enc, [][]sample.Sample{good[4:]},
			[]string{dev0 + `P\ kW=0.30000000000000004,ok=1i,seq=42i` + ms}},
		{"time before 1970 floors", enc,
			[][]sample.Sample{{{Time: -1, Device: 0, Point: sample.NoPoint, Value: 1, Seq: 3, Flags: sample.DeviceStatus | sample.EndOfPoll}}},
			[]string{dev0 + "ok=1i,seq=3i -1\n"}},
		{"string points and points and devices out of range have no field", enc,
			[][]sample.Sample{{{Device: 2, Point: 0}, {Device: 9, Point: sample.NoPoint, Flags: sample.EndOfPoll}}, devPoll(0, 5, true, pt(4, 0, sample.Good), pt(6, 1, sample.Good))},
			[]string{"", dev0 + "ok=1i,seq=5i" + ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st PollState
			for i, call := range tt.calls {
				prefix := []byte("previous\n")
				got, n := tt.enc.Append(prefix, &st, call)
				if string(got[:len(prefix)]) != "previous\n" {
					t.Fatalf("call %d: Append changed what dst held: %q", i, got)
				}
				if string(got[len(prefix):]) != tt.want[i] {
					t.Errorf("call %d appended:\n got %q\nwant %q", i, got[len(prefix):], tt.want[i])
				}
				if want := strings.Count(tt.want[i], "\n"); n != want {
					t.Errorf("call %d: %d lines, want %d", i, n, want)
				}
			}
		})
	}
}

// BenchmarkEncodePoll encodes a poll of a 12-point float32 device plus its
// status sample, as the pipeline does: one Append per poll into a buffer
// that is reset like a handed-on batch.
func BenchmarkEncodePoll(b *testing.B) {
	m := &config.Model{}
	var points []profile.Point
	for i, role := range []profile.Role{profile.RoleVoltageA, profile.RoleVoltageB, profile.RoleVoltageC,
		profile.RoleCurrentA, profile.RoleCurrentB, profile.RoleCurrentC, profile.RoleCurrentN,
		profile.RoleActivePower, profile.RoleReactivePower, "", profile.RolePowerFactor, profile.RoleFrequency} {
		points = append(points, profile.Point{Name: fmt.Sprintf("p%d", i), RegType: profile.Input, Address: uint16(2 * i), Type: profile.Float32, Role: role})
	}
	for d := range 100 {
		m.Devices = append(m.Devices, &config.Device{Index: uint32(d), ID: fmt.Sprintf("F%d-D%d", d/10, d), Feeder: fmt.Sprintf("F%d", d/10),
			Points: points, Labels: map[string]string{"substation": "north"}})
	}
	enc := NewEncoder(m)
	polls := make([][]sample.Sample, len(m.Devices))
	raw := make([]uint16, 2)
	for d := range polls {
		for i := range points {
			points[i].Encode(7200+float64(i)+0.1, raw)
			polls[d] = append(polls[d], sample.Sample{Device: uint32(d), Point: uint16(i), Value: points[i].Decode(raw)})
		}
		polls[d] = append(polls[d], sample.Sample{Device: uint32(d), Point: sample.NoPoint, Value: 1, Flags: sample.DeviceStatus | sample.EndOfPoll})
	}
	var st PollState
	dst := make([]byte, 0, 1<<16)
	t := int64(1_700_000_000_000_000_000)
	samples, lines := 0, 0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		pl := polls[i%len(polls)]
		for k := range pl {
			pl[k].Time, pl[k].Seq = t, uint32(i)
		}
		t += 1e7
		if len(dst) > cap(dst)-1024 {
			dst = dst[:0]
		}
		var n int
		dst, n = enc.Append(dst, &st, pl)
		samples += len(pl)
		lines += n
	}
	if lines != b.N {
		b.Fatalf("%d lines for %d polls", lines, b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(samples), "ns/sample")
	b.ReportMetric(float64(lines)/float64(b.N), "lines/poll")
}

func BenchmarkDecodeAppend(b *testing.B) {
	m := testModel("")
	enc := NewEncoder(m)
	p := &m.Devices[0].Points[0] // float32
	raw := make([]uint16, 2)
	p.Encode(230.1, raw)
	s := []sample.Sample{{Time: 1_700_000_000_000_000_000, Device: 0, Point: 0, Flags: sample.EndOfPoll}}
	var st PollState
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		s[0].Value = p.Decode(raw)
		s[0].Time += 1e9
		s[0].Seq++
		dst, _ = enc.Append(dst[:0], &st, s)
	}
	if len(dst) == 0 {
		b.Fatal("nothing appended")
	}
}
