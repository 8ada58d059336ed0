package influx

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// FuzzReadRecord feeds the spool's record reader arbitrary segments: it
// never panics, every record it returns checks out and re-encodes to the
// same bytes, and a valid record appended after any garbage is found.
func FuzzReadRecord(f *testing.F) {
	f.Add(AppendRecord(nil, []byte("m v=1 1\n"), 1, 1700000000000))
	f.Add(AppendRecord(AppendRecord(nil, []byte("a"), 1, 0), []byte("m,t=x v=2 2\nm v=3 3\n"), 2, -5))
	f.Add([]byte{0xA1, 0xD5, 0xED, 0xFE, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, seg []byte) {
		ScanRecords(seg, func(off int, r Record) {
			if off < 0 || off+r.Size > len(seg) || r.Size != recordHeader+len(r.Payload) {
				t.Fatalf("record at %d of size %d in a segment of %d", off, r.Size, len(seg))
			}
			again := AppendRecord(nil, r.Payload, r.Lines, r.Time)
			if !bytes.Equal(again, seg[off:off+r.Size]) {
				t.Fatalf("record at %d re-encodes differently", off)
			}
		})
		// A good record after the garbage is always found, since the
		// reader resynchronises on the magic.
		tail := AppendRecord(nil, []byte("tail v=1 1\n"), 1, 42)
		var last *Record
		ScanRecords(append(bytes.Clone(seg), tail...), func(_ int, r Record) { last = &r })
		if last == nil || string(last.Payload) != "tail v=1 1\n" || last.Time != 42 {
			t.Fatalf("the valid record after %d bytes of input was not read last (got %+v)", len(seg), last)
		}
	})
}

// normalized is what feederd writes for a name or tag value (see
// AppendMeasurement): trailing backslashes cut, control characters made
// spaces.
func normalized(s string) string {
	s = strings.TrimRight(s, `\`)
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// FuzzEncoderLineProtocol encodes one device poll with arbitrary names,
// tag values, value, quality, seq and time, and parses the line back with
// InfluxDB's own line-protocol parser: the same measurement, tags, fields
// and time come out.
func FuzzEncoderLineProtocol(f *testing.F) {
	f.Add("feeder_point", "F101-R1", "F101", "North Yard", 230.1, uint8(0), uint32(7), int64(1700000000123456789))
	f.Add(`m,x y=z\`, `R 2,x=y"q"\z`, "F1,02", "Süd=ost", math.Inf(1), uint8(2), uint32(0), int64(-1))
	f.Add("m", "a\\\\", "b\n", "\\", -0.0, uint8(4), uint32(math.MaxUint32), int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, meas, dev, feeder, label string, v float64, q uint8, seq uint32, ns int64) {
		for _, s := range []string{meas, dev, feeder, label} {
			if !utf8.ValidString(s) {
				return // line protocol is UTF-8
			}
		}
		if normalized(meas) == "" || strings.HasPrefix(normalized(meas), "#") {
			return // config.Load rejects such measurements
		}
		if ns < -(1 << 62) {
			return // outside what line protocol can carry (ns before 1823)
		}
		q %= 5
		points := []profile.Point{
			{Name: "Va", Type: profile.Float64, Role: profile.RoleVoltageA},
			{Name: "pf", Type: profile.Float32},
		}
		m := &config.Model{Influx: config.Influx{Measurement: meas}}
		m.Devices = []*config.Device{{ID: dev, Feeder: feeder, Points: points, Labels: map[string]string{"site": label}}}
		enc := NewEncoder(m)
		var st PollState
		samples := []sample.Sample{
			{Time: ns, Device: 0, Point: 0, Seq: seq, Value: v, Quality: sample.Quality(q)},
			{Time: ns, Device: 0, Point: 1, Seq: seq, Value: float64(float32(v)), Quality: sample.Good},
			{Time: ns, Device: 0, Point: sample.NoPoint, Seq: seq, Value: 1, Flags: sample.DeviceStatus | sample.EndOfPoll},
		}
		line, n := enc.Append(nil, &st, samples)
		if n != 1 {
			t.Fatalf("%d lines", n)
		}
		dec := lineprotocol.NewDecoderWithBytes(line)
		if !dec.Next() {
			t.Fatalf("no line in %q", line)
		}
		gotMeas, err := dec.Measurement()
		if err != nil {
			t.Fatalf("parse %q: measurement: %v", line, err)
		}
		if string(gotMeas) != normalized(meas) {
			t.Fatalf("measurement %q from %q, want %q", gotMeas, line, normalized(meas))
		}
		var tags []string
		for {
			k, val, err := dec.NextTag()
			if err != nil {
				t.Fatalf("parse %q: tag: %v", line, err)
			}
			if k == nil {
				break
			}
			tags = append(tags, string(k)+"="+string(val))
		}
		var want []string
		for _, kv := range [][2]string{{"device", dev}, {"feeder", feeder}, {"site", label}} {
			if v := normalized(kv[1]); v != "" {
				want = append(want, kv[0]+"="+v)
			}
		}
		if fmt.Sprint(tags) != fmt.Sprint(want) {
			t.Fatalf("tags %q from %q, want %q", tags, line, want)
		}
		fields := map[string]lineprotocol.Value{}
		for {
			k, val, err := dec.NextField()
			if err != nil {
				t.Fatalf("parse %q: field: %v", line, err)
			}
			if k == nil {
				break
			}
			fields[string(k)] = val
		}
		wantFields := 4 // voltage_a or its quality, pf, ok, seq
		goodV := q == 0 && !math.IsNaN(v) && !math.IsInf(v, 0)
		if goodV {
			if fv, ok := fields["voltage_a"]; !ok || fv.Kind() != lineprotocol.Float || fv.FloatV() != v {
				t.Fatalf("voltage_a %v from %q, want %v", fv, line, v)
			}
		} else {
			wq := int64(q)
			if q == 0 {
				wq = int64(sample.Invalid)
			}
			if fv, ok := fields["voltage_a_q"]; !ok || fv.Kind() != lineprotocol.Int || fv.IntV() != wq {
				t.Fatalf("voltage_a_q %v from %q, want %d", fv, line, wq)
			}
		}
		if f32 := float32(v); !math.IsNaN(float64(f32)) && !math.IsInf(float64(f32), 0) {
			// An unscaled float32 is written in its shortest float32 form,
			// which reads back as the same float32.
			if fv, ok := fields["pf"]; !ok || float32(fv.FloatV()) != f32 {
				t.Fatalf("pf %v from %q, want %v", fv, line, f32)
			}
		} else {
			wantFields-- // pf is written as invalid: pf_q
			if fv := fields["pf_q"]; fv.Kind() != lineprotocol.Int || fv.IntV() != int64(sample.Invalid) {
				t.Fatalf("pf_q %v from %q", fv, line)
			}
			wantFields++
		}
		if fv := fields["seq"]; fv.Kind() != lineprotocol.Int || fv.IntV() != int64(seq) {
			t.Fatalf("seq %v from %q, want %d", fv, line, seq)
		}
		if fv := fields["ok"]; fv.Kind() != lineprotocol.Int || fv.IntV() != 1 {
			t.Fatalf("ok %v from %q", fv, line)
		}
		if len(fields) != wantFields {
			t.Fatalf("%d fields from %q, want %d", len(fields), line, wantFields)
		}
		ms := ns / 1e6
		if ns < 0 && ns%1e6 != 0 {
			ms--
		}
		gotT, err := dec.Time(lineprotocol.Millisecond, time.Time{})
		if err != nil {
			t.Fatalf("parse %q: time: %v", line, err)
		}
		if gotT.UnixMilli() != ms {
			t.Fatalf("time %d ms from %q, want %d", gotT.UnixMilli(), line, ms)
		}
		if dec.Next() {
			t.Fatalf("more than one line in %q", line)
		}
	})
}
