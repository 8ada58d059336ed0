package config

import (
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/feederd/feederd/internal/detect"
)

// TestDetectRulesMatchValidate draws detect blocks around the boundaries of
// every rule and checks that config rejects exactly what
// detect.Params.Validate rejects, each time with its own message: the
// backstop at "detect" never speaks.
func TestDetectRulesMatchValidate(t *testing.T) {
	floats := []struct {
		key  string
		vals []float64
	}{
		{"range_a: {low: %v}", []float64{0.9, 0.95, 0.96, 0.999, 1, 1.05}},
		{"range_a: {high: %v}", []float64{0.95, 1, 1.001, 1.04, 1.05, 1.06}},
		{"range_b: {low: %v}", []float64{-0.1, 0, 0.9, 0.9167, 0.95, 0.96, 1.1}},
		{"range_b: {high: %v}", []float64{0.9, 1.04, 1.05, 1.0583, 1.1}},
		{"band_hysteresis: %v", []float64{-0.01, 0, 0.005, 0.04, 0.05, 0.06}},
		{"sag_threshold: %v", []float64{0.05, 0.1, 0.5, 0.8, 0.9, 0.97, 0.98, 1, 1.1}},
		{"swell_threshold: %v", []float64{0.9, 1, 1.02, 1.03, 1.1, 1.2, 1.3}},
		{"interruption_threshold: %v", []float64{-0.1, 0, 0.05, 0.1, 0.5, 0.8, 0.885, 0.9, 0.95}},
		{"hysteresis: %v", []float64{-0.01, 0, 0.02, 0.05, 0.1, 0.2}},
		{"undervoltage_min: %v", []float64{0, 0.05, 0.1, 0.5, 0.8, 0.9, 0.95}},
		{"overvoltage_max: %v", []float64{1, 1.1, 1.15, 1.2, 1.5}},
	}
	durations := []struct {
		key  string
		vals []string
	}{
		{"band_persistence: %s", []string{"0s", "999ms", "1s", "1m", "10m", "10m1s"}},
		{"instantaneous_max: %s", []string{"-1s", "0s", "100ms", "500ms", "3s", "4s"}},
		{"momentary_max: %s", []string{"0s", "400ms", "500ms", "3s", "1m", "2m"}},
		{"temporary_max: %s", []string{"0s", "3s", "4s", "1m"}},
		{"reclose_window: %s", []string{"-1s", "0s", "30s", "1m", "5m"}},
		{"lockout_after: %s", []string{"0s", "1s", "1m", "5m", "6m"}},
		{"comm_loss_after: %s", []string{"-1s", "0s", "10s"}},
		{"sustained_after: %s", []string{"0s", "1m", "5m"}},
	}
	// Combinations on the edge of a rule that a random draw rarely makes.
	edges := []string{
		"interruption_threshold: 0.885\n  undervoltage_min: 0.89\n  hysteresis: 0.02",
		"interruption_threshold: 0.87\n  undervoltage_min: 0.89\n  hysteresis: 0.02",
		"range_a: {low: 0.96}\n  band_hysteresis: 0.04",
		"range_a: {low: 0.96}\n  band_hysteresis: 0.039",
		"range_a: {high: 1.04}\n  band_hysteresis: 0.04",
		"instantaneous_max: 3s",
		"momentary_max: 1m",
		"lockout_after: 5m",
		"undervoltage_min: 0.1",
		"range_b: {low: 0.95, high: 1.05}",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var accepted, rejected int
	for i := range 5000 + len(edges) {
		var keys []string
		// Keys of one mapping may not repeat: range_a and range_b ends are
		// merged into one flow mapping each.
		ranges := map[string][]string{}
		for _, f := range floats {
			if rng.IntN(6) != 0 {
				continue
			}
			kv := fmt.Sprintf(f.key, f.vals[rng.IntN(len(f.vals))])
			if name, end, ok := strings.Cut(kv, ": {"); ok {
				ranges[name] = append(ranges[name], strings.TrimSuffix(end, "}"))
				continue
			}
			keys = append(keys, kv)
		}
		for _, name := range []string{"range_a", "range_b"} {
			if ends := ranges[name]; len(ends) > 0 {
				keys = append(keys, name+": {"+strings.Join(ends, ", ")+"}")
			}
		}
		for _, d := range durations {
			if rng.IntN(6) == 0 {
				keys = append(keys, fmt.Sprintf(d.key, d.vals[rng.IntN(len(d.vals))]))
			}
		}
		if rng.IntN(6) == 0 {
			keys = append(keys, fmt.Sprintf("comm_loss_polls: %d", rng.IntN(4)-1))
		}
		if i < len(edges) {
			keys = []string{edges[i]}
		}
		doc := "detect:\n  " + strings.Join(keys, "\n  ") + "\n"
		if len(keys) == 0 {
			doc = "detect: {}\n"
		}
		l := &loader{d: defaults(), s: newSink("d.yaml")}
		var raw rawConfig
		if !decodeFile([]byte(doc), &raw, l.s) || l.s.Len() > 0 {
			t.Fatalf("case %d: decode %q: %v", i, doc, l.s.Sorted())
		}
		p := l.detection(&raw.Detect)
		verr := p.Validate()
		for _, e := range l.s.Sorted() {
			if e.Path == "detect" {
				t.Errorf("case %d: backstop error %q for\n%s", i, e.Msg, doc)
			}
		}
		switch {
		case verr == nil && l.s.Len() > 0:
			t.Errorf("case %d: config rejects what Validate accepts: %v\n%s", i, l.s.Sorted(), doc)
		case verr != nil && l.s.Len() == 0:
			t.Errorf("case %d: config accepts what Validate rejects: %v\n%s", i, verr, doc)
		case verr == nil:
			accepted++
		default:
			rejected++
		}
	}
	// Both outcomes must be common, or the draw tests little.
	t.Logf("%d accepted, %d rejected", accepted, rejected)
	if accepted < 100 || rejected < 100 {
		t.Errorf("%d accepted, %d rejected: the draw is lopsided", accepted, rejected)
	}
}

// TestDetectErrors covers what the fixtures under testdata/config/bad do
// not: a rule between two keys is reported on the key the file sets, and
// every broken rule is reported at once.
func TestDetectErrors(t *testing.T) {
	tests := []struct {
		name  string
		block string
		want  string
	}{
		{"sag below the default interruption threshold", "detect:\n  sag_threshold: 0.05\n",
			"site.yaml:2: detect.sag_threshold: interruption_threshold 0.1 must be below sag_threshold 0.05"},
		{"range_a wider than the default range_b", "detect:\n  range_a: {high: 1.06}\n",
			"site.yaml:2: detect.range_a: range_b 0.9167..1.0583 does not contain range_a 0.95..1.06"},
		{"band hysteresis", "detect:\n  band_hysteresis: 0.05\n",
			"site.yaml:2: detect.band_hysteresis: band_hysteresis 0.05 must be less than the distance from 1 pu to either end of range_a 0.95..1.05"},
		{"lockout after the reclose window", "detect:\n  reclose_window: 30s\n",
			"site.yaml:2: detect.reclose_window: lockout_after 1m0s must not exceed reclose_window 30s"},
		{"undervoltage", "detect:\n  undervoltage_min: 0.9\n",
			"site.yaml:2: detect.undervoltage_min: undervoltage_min 0.9 must be at least interruption_threshold 0.1 and below sag_threshold 0.9"},
		{"overvoltage below the swell threshold", "detect:\n  swell_threshold: 1.3\n",
			"site.yaml:2: detect.swell_threshold: overvoltage_max 1.2 must be above swell_threshold 1.3"},
		{"not a mapping", "detect: 5\n", `site.yaml:1: detect: want a mapping, got "5"`},
		{"several", "detect:\n  range_b: {low: 0}\n  swell_threshold: 0.9\n  instantaneous_max: 0s\n  comm_loss_after: 0s\n  sustained_after: -1m\n",
			"site.yaml:2: detect.range_b.low: must be > 0, got 0\n" +
				"site.yaml:3: detect.swell_threshold: 0.9 must be above 1 pu\n" +
				"site.yaml:4: detect.instantaneous_max: must be > 0, got 0s\n" +
				"site.yaml:5: detect.comm_loss_after: must be > 0, got 0s\n" +
				"site.yaml:6: detect.sustained_after: must be > 0, got -1m0s"},
		{"nan", "detect:\n  range_a: {low: .nan}\n  sag_threshold: 0.99\n  hysteresis: 0.05\n",
			"site.yaml:2: detect.range_a.low: must be a finite number, got NaN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("site.yaml", LoadOptions{ReadFile: memFS(map[string]string{
				"site.yaml": inlineSite(tc.block), "relay.yaml": inlineRelay,
			})})
			if err == nil {
				t.Fatalf("Load succeeded, want %s", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n got: %s\nwant: %s", err, tc.want)
			}
		})
	}
}

// TestDocumentedDefaults: the values in the reference of rawConfig are the
// defaults for poll, detect and pipeline, so the reference cannot drift from
// defaults() and detect.DefaultParams().
func TestDocumentedDefaults(t *testing.T) {
	src, err := os.ReadFile("raw.go")
	if err != nil {
		t.Fatal(err)
	}
	example := docExample(t, string(src), "// rawConfig is")
	l := &loader{d: defaults(), s: newSink("raw.go")}
	var raw rawConfig
	if !decodeFile([]byte(example), &raw, l.s) || l.s.Len() > 0 {
		t.Fatalf("the reference does not decode: %v", l.s.Sorted())
	}
	if raw.Detect.SustainedAfter == nil || raw.Pipeline.DropPolicy == nil || raw.Poll.StaleAfter == nil {
		t.Fatalf("the reference lacks detect, pipeline or poll keys")
	}
	if got, want := l.poll(&raw.Poll), defaults().Poll; got != want {
		t.Errorf("poll in the reference:\n got %+v\nwant %+v", got, want)
	}
	if got, want := l.detection(&raw.Detect), detect.DefaultParams(); got != want {
		t.Errorf("detect in the reference:\n got %+v\nwant %+v", got, want)
	}
	if got, want := l.pipeline(&raw.Pipeline), defaults().Pipeline; got != want {
		t.Errorf("pipeline in the reference: got %+v, want %+v", got, want)
	}
	// Every detect key is in the reference.
	v := reflect.ValueOf(raw.Detect)
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Pointer && f.IsNil() {
			t.Errorf("detect.%s is not in the reference", v.Type().Field(i).Tag.Get("yaml"))
		}
	}
	if raw.Detect.RangeA.Low == nil || raw.Detect.RangeA.High == nil || raw.Detect.RangeB.Low == nil || raw.Detect.RangeB.High == nil {
		t.Errorf("a range end is not in the reference")
	}
	if l.s.Len() > 0 {
		t.Errorf("the reference's values are invalid: %v", l.s.Sorted())
	}
}

func TestPipeline(t *testing.T) {
	tests := []struct {
		block string
		want  Pipeline
		err   string
	}{
		{"", Pipeline{RingSize: 16384, DropPolicy: DropOldest}, ""}, // derived: a small site
		{"pipeline: {shards: 1024, ring_size: 4194304}\n", Pipeline{Shards: 1024, RingSize: 1 << 22, DropPolicy: DropOldest}, ""},
		{"pipeline: {ring_size: 1024, drop_policy: newest}\n", Pipeline{RingSize: 1024, DropPolicy: DropNewest}, ""},
		{"pipeline: {shards: -1}\n", Pipeline{}, "site.yaml:1: pipeline.shards: shards -1 out of range 0..1024 (0: one per GOMAXPROCS)"},
		{"pipeline: {ring_size: 8388608}\n", Pipeline{}, "site.yaml:1: pipeline.ring_size: ring_size 8388608 out of range 1024..4194304"},
		{"pipeline: {ring_size: 1025}\n", Pipeline{}, "site.yaml:1: pipeline.ring_size: ring_size 1025 is not a power of two (try 2048)"},
		{"pipeline: {drop_policy: Oldest}\n", Pipeline{}, `site.yaml:1: pipeline.drop_policy: unknown drop_policy "Oldest" (want oldest or newest)`},
	}
	for _, tc := range tests {
		t.Run(tc.block, func(t *testing.T) {
			m, err := Load("site.yaml", LoadOptions{ReadFile: memFS(map[string]string{
				"site.yaml": inlineSite(tc.block), "relay.yaml": inlineRelay,
			})})
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Pipeline != tc.want {
				t.Errorf("Pipeline %+v, want %+v", m.Pipeline, tc.want)
			}
		})
	}
}

func TestDeviceKind(t *testing.T) {
	const (
		breaker  = "name: p\npoints: [{name: closed, table: coil, address: 0, type: bool, role: breaker_closed}]\n"
		recloser = "name: p\npoints:\n  - {name: closed, table: coil, address: 0, type: bool, role: breaker_closed}\n  - {name: lo, table: coil, address: 1, type: bool, role: lockout}\n"
		shots    = "name: p\npoints: [{name: shots, table: holding, address: 0, type: uint16, role: shot_count}]\n"
		plain    = "name: p\npoints: [{name: kw, table: input, address: 0, type: float32, role: active_power}]\n"
	)
	tests := []struct {
		name    string
		profile string
		device  string // added to the device's mapping
		want    DeviceKind
	}{
		{"breaker_closed only", breaker, "", KindBreaker},
		{"breaker_closed and lockout", recloser, "", KindRecloser},
		{"shot_count only", shots, "", KindRecloser},
		{"no switching role", plain, "", KindMeter},
		{"own point adds breaker_closed", plain, ", points: [{name: cb, table: coil, address: 9, type: bool, role: breaker_closed}]", KindBreaker},
		{"own point adds lockout", breaker, ", points: [{name: lo, table: coil, address: 9, type: bool, role: lockout}]", KindRecloser},
		{"explicit over inferred", recloser, ", kind: sectionalizer", KindSectionalizer},
		{"explicit switch", plain, ", kind: switch", KindSwitch},
		{"explicit sensor", plain, ", kind: sensor", KindSensor},
		{"explicit meter", breaker, ", kind: meter", KindMeter},
		{"explicit breaker", recloser, ", kind: breaker", KindBreaker},
		{"explicit recloser", plain, ", kind: recloser", KindRecloser},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			site := "profiles: [p.yaml]\nlinks: [{id: gw, url: 'tcp://h:502'}]\ndevices: [{id: D, link: gw, unit: 1, profile: p, feeder: F" + tc.device + "}]\n"
			m, err := Load("site.yaml", LoadOptions{ReadFile: memFS(map[string]string{"site.yaml": site, "p.yaml": tc.profile})})
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Devices[0].Kind; got != tc.want {
				t.Errorf("kind %q, want %q", got, tc.want)
			}
			if !m.Devices[0].Kind.Valid() {
				t.Errorf("kind %q is not Valid", m.Devices[0].Kind)
			}
		})
	}
}

// TestMaxGap: an absent max_gap takes the default, an explicit 0 stays 0
// (never read a gap), and a device inherits poll.max_gap.
func TestMaxGap(t *testing.T) {
	tests := []struct {
		name       string
		poll       string
		quirks     string
		wantPoll   uint16
		wantDevice uint16
	}{
		{"absent", "", "", 10, 10},
		{"poll 0", "poll: {max_gap: 0}\n", "", 0, 0},
		{"poll 0, device 3", "poll: {max_gap: 0}\n", ", quirks: {max_gap: 3}", 0, 3},
		{"device 0", "", ", quirks: {max_gap: 0}", 10, 0},
		{"poll 124", "poll: {max_gap: 124}\n", "", 124, 124},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			site := tc.poll + "profiles: [relay.yaml]\nlinks: [{id: gw, url: 'tcp://h:502'}]\ndevices: [{id: D, link: gw, unit: 1, profile: relay, feeder: F" + tc.quirks + "}]\n"
			m, err := Load("site.yaml", LoadOptions{ReadFile: memFS(map[string]string{"site.yaml": site, "relay.yaml": inlineRelay})})
			if err != nil {
				t.Fatal(err)
			}
			if m.Poll.MaxGap != tc.wantPoll || m.Devices[0].Quirks.MaxGap != tc.wantDevice {
				t.Errorf("poll max_gap %d, device %d; want %d, %d", m.Poll.MaxGap, m.Devices[0].Quirks.MaxGap, tc.wantPoll, tc.wantDevice)
			}
		})
	}
}

// TestSources: one device without upstream per feeder; each feeder with
// more is reported once, listing them all.
func TestSources(t *testing.T) {
	dev := func(id, feeder, upstream string, unit int) string {
		return fmt.Sprintf("  - {id: %s, link: gw, unit: %d, profile: relay, feeder: %s, upstream: %q}\n", id, unit, feeder, upstream)
	}
	site := "profiles: [relay.yaml]\nlinks: [{id: gw, url: 'tcp://h:502'}]\ndevices:\n" +
		dev("A1", "FA", "", 1) + dev("B1", "FB", "", 2) + dev("A2", "FA", "", 3) +
		dev("B2", "FB", "B1", 4) + dev("A3", "FA", "", 5) + dev("C1", "FC", "", 6)
	_, err := Load("site.yaml", LoadOptions{ReadFile: memFS(map[string]string{"site.yaml": site, "relay.yaml": inlineRelay})})
	want := "site.yaml:6: devices[2].upstream: feeder FA has 3 devices without upstream (A1, A2, A3): exactly one is its source"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got: %v\nwant: %s", err, want)
	}
}
