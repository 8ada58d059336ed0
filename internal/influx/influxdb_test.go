package influx

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
	"github.com/feederd/feederd/internal/testenv"
)

// These tests run the real InfluxDB 1.8 (see testenv.StartInflux).

func influxConfig(url string, batch int, flush time.Duration) config.Influx {
	return config.Influx{URL: url, Bucket: testenv.InfluxDatabase + "/autogen",
		BatchSize: batch, QueueSize: 100000, FlushInterval: flush, Timeout: 5 * time.Second}
}

// row is one stored line as the tests compare it: tags without empty
// values, time in ns, and the fields as InfluxDB returned them.
type row struct {
	tags   map[string]string
	time   int64
	fields map[string]any
}

func (r row) String() string {
	keys := slices.Sorted(maps.Keys(r.fields))
	var b strings.Builder
	fmt.Fprintf(&b, "%v @%d", r.tags, r.time)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%#v", k, r.fields[k])
	}
	return b.String()
}

// rows flattens a GROUP BY * result; json.Number fields become float64 for
// float fields and int64 for fields listed in ints.
func rows(t *testing.T, series []testenv.Series, ints ...string) []row {
	t.Helper()
	var out []row
	for _, s := range series {
		tags := map[string]string{}
		for k, v := range s.Tags {
			if v != "" {
				tags[k] = v
			}
		}
		for _, vals := range s.Values {
			r := row{tags: tags, fields: map[string]any{}}
			for i, c := range s.Columns {
				v := vals[i]
				if c == "time" {
					ns, err := v.(json.Number).Int64()
					if err != nil {
						t.Fatalf("time %v: %v", v, err)
					}
					r.time = ns
					continue
				}
				if v == nil {
					continue
				}
				if n, ok := v.(json.Number); ok {
					var err error
					if slices.Contains(ints, c) {
						v, err = n.Int64()
					} else {
						v, err = n.Float64()
					}
					if err != nil {
						t.Fatalf("column %s value %v: %v", c, n, err)
					}
				}
				r.fields[c] = v
			}
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b row) int { return strings.Compare(a.String(), b.String()) })
	return out
}

func compareRows(t *testing.T, what string, got, want []row) {
	t.Helper()
	slices.SortFunc(want, func(a, b row) int { return strings.Compare(a.String(), b.String()) })
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i].String()
		}
		if i < len(want) {
			w = want[i].String()
		}
		if g != w {
			t.Errorf("%s row %d:\n got %s\nwant %s", what, i, g, w)
		}
	}
}

// countLines counts the poll lines of measurement: seq is on every one.
func countLines(t *testing.T, ifx *testenv.Influx, measurement string) int64 {
	t.Helper()
	series := ifx.Query(t, `SELECT count("seq") FROM `+strconv.Quote(measurement))
	if len(series) == 0 {
		return 0
	}
	n, err := series[0].Values[0][1].(json.Number).Int64()
	if err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

// TestInfluxDBStoresSamples: polls of every quality and every number form
// read back from InfluxDB as one point per poll with the values, quality
// codes, tags and times they were written with.
func TestInfluxDBStoresSamples(t *testing.T) {
	ifx := testenv.StartInflux(t)
	m := testModel("")
	f := newTestSink(t, influxConfig(ifx.URL, 4, 10*time.Millisecond), nil, nil)
	f.enc = NewEncoder(m)
	stop := f.start(t)

	const t0 = int64(1_700_000_000_000) // ms
	// decoded returns what the poller would produce for v read from the registers.
	decoded := func(dev, pt int, v float64) float64 {
		p := &m.Devices[dev].Points[pt]
		raw := make([]uint16, p.Words())
		p.Encode(v, raw)
		return p.Decode(raw)
	}
	tagsOf := func(dev int) map[string]string {
		d := m.Devices[dev]
		tags := map[string]string{"device": strings.TrimRight(d.ID, `\`), "feeder": d.Feeder}
		for k, v := range d.Labels {
			if _, builtin := tags[k]; !builtin && v != "" {
				tags[k] = v
			}
		}
		return tags
	}
	var want []row
	// poll puts one poll of dev, its points at ms-1 and its status at ms,
	// in two calls split after the second sample, and adds its row.
	poll := func(dev int, seq uint32, ms int64, ok bool, points []sample.Sample, fields map[string]any) {
		var in []sample.Sample
		for _, p := range points {
			p.Time, p.Device, p.Seq = (ms-1)*1e6, uint32(dev), seq
			in = append(in, p)
		}
		status := sample.Sample{Time: ms*1e6 + 999_999, Device: uint32(dev), Point: sample.NoPoint, Seq: seq, Flags: sample.DeviceStatus | sample.EndOfPoll}
		fields["ok"] = int64(0)
		if ok {
			status.Value = 1
			fields["ok"] = int64(1)
		}
		fields["seq"] = int64(seq)
		in = append(in, status)
		f.put(in[:2])
		f.put(in[2:])
		want = append(want, row{tags: tagsOf(dev), time: ms * 1e6, fields: fields})
	}
	for dev := range 2 {
		va := decoded(dev, 0, 230.1+float64(dev))
		// the shortest float32 form, parsed back as float64
		va32, _ := strconv.ParseFloat(strconv.FormatFloat(va, 'g', -1, 32), 64)
		if float32(va32) != float32(va) {
			t.Fatalf("float32 form of %v changed its value", va)
		}
		poll(dev, 7, t0, true, []sample.Sample{
			pt(0, va, sample.Good), pt(1, decoded(dev, 1, -32768), sample.Good), pt(2, decoded(dev, 2, 1), sample.Good),
			pt(3, 1e-7, sample.Good), pt(4, 0, sample.Good), pt(5, decoded(dev, 5, 1234.5), sample.Good),
		}, map[string]any{"voltage_a": va32, "current_a": -32768.0, "breaker_closed": 1.0, "energy": 1e-7, "P kW": 1234.5})
		poll(dev, 8, t0+1, true, []sample.Sample{
			pt(0, 0, sample.Timeout), pt(1, decoded(dev, 1, 32767), sample.Good), pt(2, decoded(dev, 2, 0), sample.Good),
			pt(3, 1e21, sample.Good), pt(4, 0, sample.Good), pt(5, 0, sample.Exception),
		}, map[string]any{"voltage_a_q": int64(2), "current_a": 32767.0, "breaker_closed": 0.0, "energy": 1e21, "P kW_q": int64(1)})
		poll(dev, 4294967295, t0+2, false, []sample.Sample{
			pt(0, 0, sample.Stale), pt(1, math.NaN(), sample.Good), pt(2, 0, sample.Timeout),
			pt(3, -1.2345678901234567e-300, sample.Good), pt(4, 0, sample.Timeout), pt(5, 0, sample.Invalid),
		}, map[string]any{"voltage_a_q": int64(3), "current_a_q": int64(4), "breaker_closed_q": int64(2),
			"energy": -1.2345678901234567e-300, "P kW_q": int64(4)})
	}
	waitFor(t, fmt.Sprintf("%d lines written", len(want)), func() bool {
		return f.value(t, "feederd_influx_points_written_total") == float64(len(want))
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := f.sink.Ready(); err != nil {
		t.Errorf("Ready = %v", err)
	}
	ints := []string{"ok", "seq"}
	for _, k := range []string{"voltage_a", "current_a", "breaker_closed", "energy", "P kW"} {
		ints = append(ints, k+"_q")
	}
	compareRows(t, "feeder_point", rows(t, ifx.Query(t, `SELECT * FROM "feeder_point" GROUP BY *`), ints...), want)
}

func TestInfluxDBEscapingRoundTrip(t *testing.T) {
	ifx := testenv.StartInflux(t)
	ids := []string{"a b", "c,d", "e=f", `g"h`, `i\j`, `k\,l`, `m\ n`, "Süd√é 东", `trail\`, "x,y=z \"w\" \\v"}
	m := &config.Model{Influx: config.Influx{Measurement: `grid meas,x=y`}}
	for i, id := range ids {
		m.Devices = append(m.Devices, &config.Device{
			Index: uint32(i), ID: id, Feeder: "F " + id,
			// Field keys get the escapes of tag keys, but InfluxDB 1.8 cannot
			// read a backslash before an escaped character in a field key;
			// point names are [a-z0-9_]+ (config), so field keys never hold one.
			Points: []profile.Point{{Name: fmt.Sprintf("p %d,=x", i), Type: profile.Int16}},
			Labels: map[string]string{"label key " + id: "v " + id},
		})
	}
	f := newTestSink(t, influxConfig(ifx.URL, 100, 10*time.Millisecond), nil, nil)
	f.enc = NewEncoder(m)
	stop := f.start(t)
	var want []row
	for i, id := range ids {
		f.put([]sample.Sample{{Time: 1e15, Value: float64(i), Device: uint32(i), Point: 0, Seq: 1, Flags: sample.EndOfPoll}})
		id = strings.TrimRight(id, `\`)
		want = append(want, row{
			tags:   map[string]string{"device": id, "feeder": "F " + id, "label key " + id: "v " + id},
			time:   1e15,
			fields: map[string]any{fmt.Sprintf("p %d,=x", i): float64(i), "seq": int64(1)},
		})
	}
	const msg = "say \"hi\" \\ back\\slash, a=b\nsecond line \\"
	event := AppendMeasurement(nil, "feederd event")
	event = append(event, ',')
	event = AppendTag(event, "kind")
	event = append(event, '=')
	event = AppendTag(event, `k,i=n d`)
	event = append(event, ' ')
	event = AppendStringField(event, "msg x", msg)
	event = append(event, ",stage=\"start\" 1000000000000\n"...)
	f.sink.PutLines(event, 1)
	waitFor(t, "all lines written", func() bool {
		return f.value(t, "feederd_influx_points_written_total") == float64(len(ids)+1)
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	compareRows(t, "devices", rows(t, ifx.Query(t, `SELECT * FROM "grid meas,x=y" GROUP BY *`), "seq"), want)
	compareRows(t, "event", rows(t, ifx.Query(t, `SELECT "msg x", "stage" FROM "feederd event" GROUP BY *`)), []row{{
		tags: map[string]string{"kind": `k,i=n d`}, time: 1e18,
		fields: map[string]any{"msg x": msg, "stage": "start"},
	}})
}

func TestInfluxDBDeliversQueueWhenServerAppears(t *testing.T) {
	addr := testenv.FreeAddr(t)
	f := newTestSink(t, influxConfig("http://"+addr, 50, 20*time.Millisecond), nil, func(o *SinkOptions) {
		o.BackoffInitial = 10 * time.Millisecond
		o.BackoffMax = 200 * time.Millisecond
	})
	f.start(t)
	for i := range 10 {
		f.put(seqSamples(i*50, 50)) // nothing listens: must return at once
	}
	waitFor(t, "a failed write", func() bool {
		return f.value(t, "feederd_influx_writes_total", "result", "retry") >= 1
	})
	if err := f.sink.Ready(); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Ready while nothing listens = %v, want connection refused", err)
	}
	if got := f.value(t, "feederd_influx_up"); got != 0 {
		t.Errorf("up = %v, want 0", got)
	}

	ifx := testenv.StartInfluxOn(t, addr)
	waitFor(t, "500 lines written", func() bool {
		return f.value(t, "feederd_influx_points_written_total") == 500
	})
	if err := f.sink.Ready(); err != nil {
		t.Errorf("Ready = %v, want nil", err)
	}
	if got := countLines(t, ifx, "feeder_point"); got != 500 {
		t.Errorf("InfluxDB holds %d lines, want 500", got)
	}
	for _, name := range []string{"feederd_influx_points_dropped_total", "feederd_influx_queue_lines"} {
		if got := f.value(t, name); got != 0 { // dropped: reason queue_full
			t.Errorf("%s = %v, want 0", name, got)
		}
	}
	for _, r := range []string{"rejected", "shutdown"} {
		if got := f.value(t, "feederd_influx_points_failed_total", "reason", r); got != 0 {
			t.Errorf("failed{%s} = %v, want 0", r, got)
		}
	}
}

func TestInfluxDBOutageAndRestart(t *testing.T) {
	ifx := testenv.StartInflux(t)
	f := newTestSink(t, influxConfig(ifx.URL, 50, 20*time.Millisecond), nil, func(o *SinkOptions) {
		o.BackoffInitial = 10 * time.Millisecond
		o.BackoffMax = 200 * time.Millisecond
	})
	f.start(t)
	f.put(seqSamples(0, 100))
	waitFor(t, "100 lines written", func() bool {
		return f.value(t, "feederd_influx_points_written_total") == 100
	})

	ifx.Stop()
	f.put(seqSamples(100, 120))
	waitFor(t, "not ready during the outage", func() bool { return f.sink.Ready() != nil })

	ifx.Restart()
	waitFor(t, "220 lines written", func() bool {
		return f.value(t, "feederd_influx_points_written_total") == 220
	})
	if got := countLines(t, ifx, "feeder_point"); got != 220 {
		t.Errorf("InfluxDB holds %d lines, want 220 (data kept across the restart, no loss, no duplicates)", got)
	}
	if err := f.sink.Ready(); err != nil {
		t.Errorf("Ready = %v", err)
	}
}

// TestInfluxDBRejectsBadLines: a batch InfluxDB refuses in part (a field
// type conflict) or whole (unparseable) lands its good lines; the bad ones
// go to the dead-letter file beside the spool, with the server's answer.
func TestInfluxDBRejectsBadLines(t *testing.T) {
	tests := []struct {
		name     string
		lines    string
		n        int
		stored   int64 // lines of feeder_point in InfluxDB afterwards
		rejected float64
		dead     string // the dead-letter file's lines after its comment
		answer   string // in the comment
	}{
		{"unparseable line", "not line protocol\n" + `feeder_point,device=y current_a=2,seq=2i 6` + "\n", 2, 2, 1,
			"not line protocol\n", "unable to parse 'not line protocol': invalid field format"},
		{"field type conflict", `feeder_point,device=x current_a="text",seq=1i 5` + "\n" +
			`feeder_point,device=y current_a=2,seq=2i 6` + "\n" +
			`feeder_point,device=z current_a=3,seq=3i 7` + "\n", 3, 3, 1,
			`feeder_point,device=x current_a="text",seq=1i 5` + "\n",
			`field type conflict: input field "current_a" on measurement "feeder_point" is type string, already exists as type float dropped=1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ifx := testenv.StartInflux(t)
			dir := t.TempDir()
			f := newTestSink(t, influxConfig(ifx.URL, 100, 10*time.Millisecond), nil, func(o *SinkOptions) {
				o.Spool = openSpoolFor(t, dir, 1<<20)
			})
			f.start(t)
			f.put(seqSamples(0, 1)) // makes current_a a float field
			waitFor(t, "the first line written", func() bool {
				return f.value(t, "feederd_influx_points_written_total") == 1
			})
			f.sink.PutLines([]byte(tt.lines), tt.n)
			waitFor(t, "the bad line rejected", func() bool {
				return f.value(t, "feederd_influx_points_failed_total", "reason", "rejected") == tt.rejected
			})
			waitFor(t, "the good lines written", func() bool {
				return f.value(t, "feederd_influx_points_written_total") == float64(1+tt.n)-tt.rejected
			})
			if got := countLines(t, ifx, "feeder_point"); got != tt.stored {
				t.Errorf("InfluxDB holds %d lines, want %d", got, tt.stored)
			}
			b, err := os.ReadFile(filepath.Join(dir, DeadLetterFile))
			if err != nil {
				t.Fatal(err)
			}
			comment, rest, _ := strings.Cut(string(b), "\n")
			if rest != tt.dead || !strings.HasPrefix(comment, "# ") || !strings.Contains(comment, " http 400: ") ||
				!strings.Contains(comment, tt.answer) {
				t.Errorf("dead-letter file %q, want a comment with http 400 and %q, then %q", b, tt.answer, tt.dead)
			}
			if logs := f.logs.String(); strings.Count(logs, `msg="influxdb rejected lines, written to the dead-letter file"`) != 1 {
				t.Errorf("want one log line for the rejected line:\n%s", logs)
			}
			if err := f.sink.Ready(); err != nil {
				t.Errorf("Ready = %v, want nil: the server answered", err)
			}
		})
	}
}

func TestInfluxDBFlushOnShutdown(t *testing.T) {
	ifx := testenv.StartInflux(t)
	f := newTestSink(t, influxConfig(ifx.URL, 1000, time.Hour), nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.sink.Run(ctx) }()
	waitFor(t, "ready from the ping at start", func() bool { return f.sink.Ready() == nil })
	f.put(seqSamples(0, 7))
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := countLines(t, ifx, "feeder_point"); got != 7 {
		t.Errorf("InfluxDB holds %d lines, want 7", got)
	}
	if got := f.value(t, "feederd_influx_points_written_total"); got != 7 {
		t.Errorf("written = %v, want 7", got)
	}
}

// TestInfluxDBOutageLongerThanQueue: a fixed feed of 3,000 polls with
// InfluxDB stopped for 2,000 of them and a memory queue of 20 lines: the
// spool holds the rest, and InfluxDB ends with exactly the 3,000 lines
// produced, each written once.
func TestInfluxDBOutageLongerThanQueue(t *testing.T) {
	ifx := testenv.StartInflux(t)
	cfg := influxConfig(ifx.URL, 10, 5*time.Millisecond)
	cfg.QueueSize = 20
	dir := t.TempDir()
	f := newTestSink(t, cfg, nil, func(o *SinkOptions) {
		o.Spool = openSpoolFor(t, dir, 64<<20)
		o.BackoffInitial = 10 * time.Millisecond
		o.BackoffMax = 100 * time.Millisecond
	})
	stop := f.start(t)
	put := func(from, to int) {
		for i := from; i < to; i += 10 {
			f.put(seqSamples(i, 10))
		}
	}
	put(0, 500)
	waitFor(t, "500 lines written", func() bool { return f.value(t, "feederd_influx_points_written_total") == 500 })

	ifx.Stop()
	put(500, 510)
	waitFor(t, "not ready during the outage", func() bool { return f.sink.Ready() != nil })
	put(510, 2500)
	// Past the 20-line queue everything goes to disk, even before the
	// outage when a burst outruns InfluxDB.
	waitFor(t, "the outage's lines spooled", func() bool {
		return f.value(t, "feederd_influx_queue_lines") == 0
	})
	if got := f.value(t, "feederd_influx_points_spooled_total"); got < 2000 {
		t.Errorf("spooled %v lines, want the outage's 2000 at least", got)
	}
	if got := f.value(t, "feederd_influx_spool_bytes"); got == 0 {
		t.Errorf("spool_bytes = 0 during the outage")
	}

	ifx.Restart()
	put(2500, 3000)
	waitFor(t, "3000 lines written", func() bool { return f.value(t, "feederd_influx_points_written_total") == 3000 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := countLines(t, ifx, "feeder_point"); got != 3000 {
		t.Errorf("InfluxDB holds %d lines, want 3000", got)
	}
	series := ifx.Query(t, `SELECT count(distinct("seq")) FROM feeder_point`)
	if n, _ := series[0].Values[0][1].(json.Number).Int64(); n != 3000 {
		t.Errorf("%d distinct seq in InfluxDB, want 3000", n)
	}
	for name, want := range map[string]float64{
		"feederd_influx_points_written_total":  3000,
		"feederd_influx_points_replayed_total": f.value(t, "feederd_influx_points_spooled_total"),
		"feederd_influx_spool_bytes":           0,
		"feederd_influx_queue_lines":           0,
	} {
		if got := f.value(t, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	for _, r := range dropReasons {
		if got := f.value(t, "feederd_influx_points_dropped_total", "reason", r); got != 0 {
			t.Errorf("dropped{%s} = %v, want 0", r, got)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*"+segmentExt)); len(m) != 0 {
		t.Errorf("segments left after the replay: %v", m)
	}
}

// BenchmarkInfluxDBSustained: 12-field poll lines through the sink into
// the local InfluxDB, batches of 5,000; the figure is lines (device polls)
// per second from the first Put until InfluxDB accepted the last.
func BenchmarkInfluxDBSustained(b *testing.B) {
	ifx := testenv.StartInflux(b)
	cfg := influxConfig(ifx.URL, 5000, 100*time.Millisecond)
	cfg.QueueSize = 1 << 22
	reg := prometheus.NewRegistry()
	s, err := NewSink(SinkOptions{Config: cfg, Logger: slog.New(slog.DiscardHandler), Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	const perOp = 5000
	batches := make([][]byte, b.N)
	for i := range batches {
		batches[i] = benchBatch(i*perOp, perOp)
	}
	total := b.N * perOp
	b.ResetTimer()
	start := time.Now()
	for _, batch := range batches {
		s.PutLines(batch, perOp)
	}
	for metricValue(b, reg, "feederd_influx_points_written_total") < float64(total) {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(total)/elapsed.Seconds(), "lines/s")
	b.ReportMetric(12*float64(total)/elapsed.Seconds(), "values/s")
}

// TestInfluxDBGzip: with gzip on, InfluxDB decodes the compressed writes.
func TestInfluxDBGzip(t *testing.T) {
	ifx := testenv.StartInflux(t)
	cfg := influxConfig(ifx.URL, 50, 10*time.Millisecond)
	cfg.Gzip = true
	f := newTestSink(t, cfg, nil, nil)
	stop := f.start(t)
	f.put(seqSamples(0, 120))
	waitFor(t, "120 lines written", func() bool { return f.value(t, "feederd_influx_points_written_total") == 120 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := countLines(t, ifx, "feeder_point"); got != 120 {
		t.Errorf("InfluxDB holds %d lines, want 120", got)
	}
}
