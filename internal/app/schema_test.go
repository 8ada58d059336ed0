package app

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/sim/devsrv"
	"github.com/feederd/feederd/internal/testenv"
)

// fieldOf names the InfluxDB field of each point of the shipped profiles
// that has a role; a point without one is its own name.
var fieldOf = map[string]string{
	"va": "voltage_a", "vb": "voltage_b", "vc": "voltage_c",
	"van": "voltage_a", "vbn": "voltage_b", "vcn": "voltage_c",
	"ia": "current_a", "ib": "current_b", "ic": "current_c", "in": "current_n",
	"kw": "active_power", "kvar": "reactive_power", "pf": "power_factor", "freq": "frequency",
}

func field(point string) string {
	if f, ok := fieldOf[point]; ok {
		return f
	}
	return point
}

// counters returns the counter name summed by the value of label, or of
// orLabel for a series without label.
func counters(t *testing.T, reg *prometheus.Registry, name, label, orLabel string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			key, or := "", ""
			for _, lp := range m.GetLabel() {
				switch lp.GetName() {
				case label:
					key = lp.GetValue()
				case orLabel:
					or = lp.GetValue()
				}
			}
			if key == "" {
				key = or
			}
			out[key] += m.GetCounter().GetValue()
		}
	}
	return out
}

// pollLine is one point of feeder_point as read back: the values of the
// float fields and the integer fields (ok, seq, <field>_q) apart.
type pollLine struct {
	seq    int64
	ok     int64
	values map[string]float64
	codes  map[string]int64
}

// pollLines reads every poll line of every device, in seq order.
func pollLines(t *testing.T, ifx *testenv.Influx) map[string][]pollLine {
	t.Helper()
	out := map[string][]pollLine{}
	for _, s := range ifx.Query(t, `SELECT *::field FROM feeder_point GROUP BY device`) {
		dev := s.Tags["device"]
		for _, vals := range s.Values {
			l := pollLine{seq: -1, ok: -1, values: map[string]float64{}, codes: map[string]int64{}}
			for i, c := range s.Columns {
				n, isNum := vals[i].(json.Number)
				if c == "time" || vals[i] == nil {
					continue
				}
				if !isNum {
					t.Fatalf("%s: field %s = %#v is not a number", dev, c, vals[i])
				}
				var err error
				switch {
				case c == "ok":
					l.ok, err = n.Int64()
				case c == "seq":
					l.seq, err = n.Int64()
				case strings.HasSuffix(c, "_q"):
					l.codes[strings.TrimSuffix(c, "_q")], err = n.Int64()
				default:
					l.values[c], err = n.Float64()
				}
				if err != nil {
					t.Fatalf("%s: field %s = %v: %v", dev, c, n, err)
				}
			}
			out[dev] = append(out[dev], l)
		}
	}
	for _, ls := range out {
		slices.SortFunc(ls, func(a, b pollLine) int { return int(a.seq - b.seq) })
	}
	return out
}

// Quality codes of the schema.
const (
	qException = 1
	qTimeout   = 2
	qStale     = 3
	qInvalid   = 4
)

// TestPollLines runs the daemon against a scripted fleet of rtusim devices
// and checks every line it wrote to a real InfluxDB: one point per device
// poll, with each point's exact value when good and its exact quality code
// when not, ok and seq, and as many points as the device had polls.
//
//   - F1-BRK (sel751a) answers throughout; its van is set from 7212 to 7100
//     V mid-run.
//   - F1-REC (feeder-rtu) answers its input registers with exception 2
//     throughout, its discrete inputs and holding registers normally.
//   - F1-MTR (pm5100) answers, then falls silent mid-run: its points time
//     out, then turn stale 3 slots after their last good value.
//   - F2-REC (feeder-rtu) sends NaN for its power factor: invalid.
func TestPollLines(t *testing.T) {
	influx := testenv.StartInflux(t)
	brkVals := map[string]float64{"van": 7212, "vbn": 7188, "vcn": 7199, "ia": -12, "kw": 1500, "pf": 0.97, "freq": 59.98, "breaker_closed": 1}
	recVals := map[string]float64{"va": 7215.5, "vb": 7190.25, "vc": 7201.75, "ia": 212.5, "freq": 60.01,
		"breaker_closed": 1, "lockout": 0, "shot_count": 2, "trip_count": 70000}
	mtrVals := map[string]float64{"van": 120.5, "vbn": 119.75, "vcn": 120.25, "ia": 15.5, "kva": 3.25, "freq": 60, "energy": 123456789}
	f2Vals := map[string]float64{"va": 7100.5, "vb": 7120, "vc": 7110.25, "kw": 900.5, "pf": math.NaN(), "breaker_closed": 1}
	brk, brkURL := simDevice(t, "F1-BRK", 1, "sel751a.yaml", brkVals)
	rec, recURL := simDevice(t, "F1-REC", 1, "feeder-rtu.yaml", recVals)
	mtr, mtrURL := simDevice(t, "F1-MTR", 1, "pm5100.yaml", mtrVals)
	_, f2URL := simDevice(t, "F2-REC", 1, "feeder-rtu.yaml", f2Vals)
	rec.SetFault(devsrv.Fault{Exceptions: map[string]byte{"kw": 2}})

	cfg := fmt.Sprintf(`
profiles: [%[1]s/feeder-rtu.yaml, %[1]s/sel751a.yaml, %[1]s/pm5100.yaml]
poll: {interval: 100ms, timeout: 80ms, backoff_initial: 50ms, backoff_max: 200ms}
influx: {url: %[2]s, bucket: %[3]s, flush_interval: 100ms, batch_size: 100}
links:
  - {id: F1-BRK, url: %[4]s}
  - {id: F1-REC, url: %[5]s}
  - {id: F1-MTR, url: %[6]s}
  - {id: F2-REC, url: %[7]s}
devices:
  - {id: F1-BRK, link: F1-BRK, unit: 1, profile: sel751a, feeder: F1, nominal_voltage: 7200, labels: {substation: north}}
  - {id: F1-REC, link: F1-REC, unit: 1, profile: feeder-rtu, feeder: F1, upstream: F1-BRK, nominal_voltage: 7200}
  - {id: F1-MTR, link: F1-MTR, unit: 1, profile: pm5100, feeder: F1, upstream: F1-REC, nominal_voltage: 120}
  - {id: F2-REC, link: F2-REC, unit: 1, profile: feeder-rtu, feeder: F2, nominal_voltage: 7200}
`, profilesDir(t), influx.URL, influx.Bucket, brkURL, recURL, mtrURL, f2URL)
	d := startDaemon(t, cfg)
	devices := []string{"F1-BRK", "F1-REC", "F1-MTR", "F2-REC"}
	// Each device has a link of its own, named like it, so that polls
	// counted by device or by link are the device's.
	polled := func() map[string]float64 { return counters(t, d.reg, "feederd_polls_total", "device", "link") }
	waitPolls := func(n float64) {
		t.Helper()
		start := polled()
		eventually(t, 30*time.Second, fmt.Sprintf("%v more polls of each device", n), func() error {
			now := polled()
			for _, dev := range devices {
				if now[dev]-start[dev] < n {
					return fmt.Errorf("%s: %v polls", dev, now[dev]-start[dev])
				}
			}
			return nil
		})
	}
	waitPolls(5)
	if err := brk.SetValue("van", 7100); err != nil {
		t.Fatal(err)
	}
	mtr.SetFault(devsrv.Fault{Silent: true})
	waitPolls(8)
	if err := d.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	// The daemon flushed everything before Run returned: InfluxDB holds a
	// point for every poll, and the sink wrote nothing else but events.
	polls := polled()
	lines := pollLines(t, influx)
	total := 0.0
	for _, dev := range devices {
		if got := float64(len(lines[dev])); got != polls[dev] {
			t.Errorf("%s: %v points in InfluxDB, want %v (its polls)", dev, got, polls[dev])
		}
		total += polls[dev]
	}
	events := counters(t, d.reg, "feederd_events_total", "", "")[""]
	if written := counters(t, d.reg, "feederd_influx_points_written_total", "", "")[""]; written != total+events {
		t.Errorf("lines written = %v, want %v polls + %v events", written, total, events)
	}

	profilePoints := func(file string) []string {
		p, err := config.LoadProfile(filepath.Join("..", "..", "configs", "profiles", file))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, pt := range p.Points {
			names = append(names, pt.Name)
		}
		return names
	}
	// check compares one line with what each point should be: a value
	// (want[point] is a float64) or a quality code (an int).
	check := func(dev string, l pollLine, ok int64, want map[string]any) {
		t.Helper()
		if l.ok != ok {
			t.Errorf("%s seq %d: ok = %d, want %d", dev, l.seq, l.ok, ok)
		}
		if len(l.values)+len(l.codes) != len(want) {
			t.Errorf("%s seq %d: %d values and %d codes, want %d fields: %+v", dev, l.seq, len(l.values), len(l.codes), len(want), l)
		}
		for f, w := range want {
			v, hasV := l.values[f]
			q, hasQ := l.codes[f]
			switch w := w.(type) {
			case float64:
				if !hasV || hasQ || v != w {
					t.Errorf("%s seq %d: %s = %v (code %v), want %v", dev, l.seq, f, v, q, w)
				}
			case int:
				if hasV || !hasQ || q != int64(w) {
					t.Errorf("%s seq %d: %s code %v (value %v), want code %d", dev, l.seq, f, q, v, w)
				}
			}
		}
	}
	valuesOf := func(file string, set map[string]float64) map[string]any {
		out := map[string]any{}
		for _, p := range profilePoints(file) {
			out[field(p)] = set[p] // 0 for a point never set
		}
		return out
	}

	// F1-BRK: all good; van 7212 until the set, then 7100, never back.
	brkWant := valuesOf("sel751a.yaml", brkVals)
	setAt := -1
	for i, l := range lines["F1-BRK"] {
		if setAt < 0 && l.values["voltage_a"] == 7100 {
			setAt = i
		}
		brkWant["voltage_a"] = 7212.0
		if setAt >= 0 {
			brkWant["voltage_a"] = 7100.0
		}
		check("F1-BRK", l, 1, brkWant)
	}
	if setAt <= 0 {
		t.Errorf("F1-BRK: van set to 7100 at line %d of %d, want inside the run", setAt, len(lines["F1-BRK"]))
	}

	// F1-REC: the input registers (12 float32 in one request) are refused,
	// the other tables answered: ok.
	recWant := valuesOf("feeder-rtu.yaml", recVals)
	for _, p := range []string{"va", "vb", "vc", "ia", "ib", "ic", "in", "kw", "kvar", "kva", "pf", "freq"} {
		recWant[field(p)] = qException
	}
	for _, l := range lines["F1-REC"] {
		check("F1-REC", l, 1, recWant)
	}

	// F2-REC: all good but the NaN power factor.
	f2Want := valuesOf("feeder-rtu.yaml", f2Vals)
	f2Want["power_factor"] = qInvalid
	for _, l := range lines["F2-REC"] {
		check("F2-REC", l, 1, f2Want)
	}

	// F1-MTR: good until it falls silent; then each point is timeout, and
	// stale from 3 slots after its last good value (a poll cut off by the
	// fault may have answered part of its requests).
	mtrGood := valuesOf("pm5100.yaml", mtrVals)
	lastGood := map[string]int64{}
	silent := map[string]bool{}
	seen := map[int64]int{}
	for _, l := range lines["F1-MTR"] {
		want := map[string]any{}
		ok := int64(0)
		for f, v := range mtrGood {
			if _, good := l.values[f]; good && !silent[f] {
				want[f] = v
				lastGood[f] = l.seq - 1 // the slot of the poll
				ok = 1
				continue
			}
			silent[f] = true
			if l.seq-1-lastGood[f] >= 3 {
				want[f] = qStale
			} else {
				want[f] = qTimeout
			}
		}
		check("F1-MTR", l, ok, want)
		for _, q := range l.codes {
			seen[q]++
		}
	}
	t.Logf("points per device %v; F1-MTR quality codes %v; events %v", polls, seen, events)
	if seen[qTimeout] == 0 || seen[qStale] == 0 || len(silent) == 0 || lastGood["voltage_a"] == 0 {
		t.Errorf("F1-MTR: want good lines, then timeouts, then stale; quality codes seen %v", seen)
	}
	// Every device's seq counts up without repeating.
	for dev, ls := range lines {
		for i := 1; i < len(ls); i++ {
			if ls[i].seq <= ls[i-1].seq {
				t.Errorf("%s: seq %d after %d", dev, ls[i].seq, ls[i-1].seq)
			}
		}
	}
}
