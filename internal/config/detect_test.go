package config

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/yamlfile"
)

// TestDetectOneSource: the rules of the detect block live in
// detect.Params.Validate alone. Each case draws parameters around the edges
// of the rules, sets them on detect.DefaultParams and writes them as a
// detect block, one key per line; config must report exactly Validate's
// errors, each with Validate's message, on the line of the first key the
// rule quotes that the block sets (rules on one key joined in one error,
// as the file has one error per key path). A rule added or changed in detect
// reaches the file's errors with no change here.
func TestDetectOneSource(t *testing.T) {
	type draw struct {
		key string // the detect key, "range_a.low" for an end of a range
		val string
		set func(p *detect.Params)
	}
	f := func(key string, ptr func(p *detect.Params) *float64, vals ...float64) []draw {
		var out []draw
		for _, v := range vals {
			out = append(out, draw{key, fmt.Sprint(v), func(p *detect.Params) { *ptr(p) = v }})
		}
		return out
	}
	d := func(key string, ptr func(p *detect.Params) *time.Duration, vals ...time.Duration) []draw {
		var out []draw
		for _, v := range vals {
			out = append(out, draw{key, v.String(), func(p *detect.Params) { *ptr(p) = v }})
		}
		return out
	}
	s, m := time.Second, time.Minute
	keys := [][]draw{
		f("range_a.low", func(p *detect.Params) *float64 { return &p.RangeA.Low }, 0.9, 0.95, 0.96, 0.999, 1, 1.05),
		f("range_a.high", func(p *detect.Params) *float64 { return &p.RangeA.High }, 0.95, 1, 1.001, 1.04, 1.05, 1.06),
		f("range_b.low", func(p *detect.Params) *float64 { return &p.RangeB.Low }, -0.1, 0, 0.9, 0.9167, 0.95, 0.96, 1.1),
		f("range_b.high", func(p *detect.Params) *float64 { return &p.RangeB.High }, 0.9, 1.04, 1.05, 1.0583, 1.1),
		f("band_hysteresis", func(p *detect.Params) *float64 { return &p.BandHysteresis }, -0.01, 0, 0.005, 0.04, 0.05, 0.06),
		f("sag_threshold", func(p *detect.Params) *float64 { return &p.SagThreshold }, 0.05, 0.1, 0.5, 0.8, 0.9, 0.97, 0.98, 1, 1.1),
		f("swell_threshold", func(p *detect.Params) *float64 { return &p.SwellThreshold }, 0.9, 1, 1.02, 1.03, 1.1, 1.2, 1.3),
		f("interruption_threshold", func(p *detect.Params) *float64 { return &p.InterruptionThreshold }, -0.1, 0, 0.05, 0.1, 0.5, 0.8, 0.885, 0.9, 0.95),
		f("hysteresis", func(p *detect.Params) *float64 { return &p.Hysteresis }, -0.01, 0, 0.02, 0.05, 0.1, 0.2),
		f("undervoltage_min", func(p *detect.Params) *float64 { return &p.UndervoltageMin }, 0, 0.05, 0.1, 0.5, 0.8, 0.9, 0.95),
		f("overvoltage_max", func(p *detect.Params) *float64 { return &p.OvervoltageMax }, 1, 1.1, 1.15, 1.2, 1.5),
		d("band_persistence", func(p *detect.Params) *time.Duration { return &p.BandPersistence }, 0, 999*time.Millisecond, s, m, 10*m, 10*m+s),
		d("instantaneous_max", func(p *detect.Params) *time.Duration { return &p.InstantaneousMax }, -s, 0, 100*time.Millisecond, 500*time.Millisecond, 3*s, 4*s),
		d("momentary_max", func(p *detect.Params) *time.Duration { return &p.MomentaryMax }, 0, 400*time.Millisecond, 500*time.Millisecond, 3*s, m, 2*m),
		d("temporary_max", func(p *detect.Params) *time.Duration { return &p.TemporaryMax }, 0, 3*s, 4*s, m),
		d("reclose_window", func(p *detect.Params) *time.Duration { return &p.RecloseWindow }, -s, 0, 30*s, m, 5*m),
		d("lockout_after", func(p *detect.Params) *time.Duration { return &p.LockoutAfter }, 0, s, m, 5*m, 6*m),
		d("comm_loss_after", func(p *detect.Params) *time.Duration { return &p.CommLossAfter }, -s, 0, 10*s),
		d("sustained_after", func(p *detect.Params) *time.Duration { return &p.SustainedAfter }, 0, m, 5*m),
	}
	var polls []draw
	for _, n := range []int{-1, 0, 1, 3} {
		polls = append(polls, draw{"comm_loss_polls", fmt.Sprint(n), func(p *detect.Params) { p.CommLossPolls = n }})
	}
	keys = append(keys, polls)

	rng := rand.New(rand.NewPCG(1, 2))
	var accepted, rejected int
	named := map[string]bool{} // the parameter names detect's errors use
	for i := range 3000 {
		p := detect.DefaultParams()
		// Each top-level key on its own line; the two ends of a range share
		// their range's flow mapping.
		var lines []string
		lineOf := map[string]int{} // detect key path -> line
		ends := map[string][]string{}
		for _, k := range keys {
			if rng.IntN(8) != 0 {
				continue
			}
			dr := k[rng.IntN(len(k))]
			dr.set(&p)
			if rng, end, ok := strings.Cut(dr.key, "."); ok {
				ends[rng] = append(ends[rng], end+": "+dr.val)
				lineOf["detect."+dr.key] = -len(ends) // fixed below
				continue
			}
			lines = append(lines, dr.key+": "+dr.val)
			lineOf["detect."+dr.key] = len(lines) + 1
		}
		for _, r := range []string{"range_a", "range_b"} {
			if len(ends[r]) == 0 {
				continue
			}
			lines = append(lines, r+": {"+strings.Join(ends[r], ", ")+"}")
			lineOf["detect."+r] = len(lines) + 1
			for _, e := range ends[r] {
				end, _, _ := strings.Cut(e, ":")
				lineOf["detect."+r+"."+end] = len(lines) + 1
			}
		}
		doc := "detect: {}\n"
		if len(lines) > 0 {
			doc = "detect:\n  " + strings.Join(lines, "\n  ") + "\n"
		}

		// What detect says, placed by hand.
		var want []string
		seen := map[string]int{} // path -> index in want
		var verrs detect.Errors
		if err := p.Validate(); err != nil {
			if !errors.As(err, &verrs) {
				t.Fatalf("Validate returned %T, want detect.Errors", err)
			}
			rejected++
		} else {
			accepted++
		}
		for _, e := range verrs {
			for _, fl := range e.Fields() {
				named[fl] = true
			}
			path, line := "detect."+e.Field, 1
			for _, fl := range e.Fields() {
				if l, ok := lineOf["detect."+fl]; ok {
					path, line = "detect."+fl, l
					break
				}
			}
			if l, ok := lineOf[path]; ok {
				line = l
			} else if l, ok := lineOf[yamlfile.ParentPath(path)]; ok {
				line = l // an end of a range the file does not set: its range's line
			}
			// One error per key path: rules placed on one key share it.
			if i, ok := seen[path]; ok {
				want[i] += "; " + e.Err.Error()
				continue
			}
			seen[path] = len(want)
			want = append(want, fmt.Sprintf("d.yaml:%d: %s: %s", line, path, e.Err))
		}
		slices.SortStableFunc(want, func(a, b string) int { return cmp.Compare(lineNo(a), lineNo(b)) })

		l := &loader{d: defaults(), s: newSink("d.yaml")}
		var raw rawConfig
		if !decodeFile([]byte(doc), &raw, l.s) || l.s.Len() > 0 {
			t.Fatalf("case %d: decode %q: %v", i, doc, l.s.Sorted())
		}
		if got := l.detection(&raw.Detect); got != p {
			t.Fatalf("case %d: config built\n%+v\nthe draw set\n%+v\n%s", i, got, p, doc)
		}
		var got []string
		for _, e := range l.s.Sorted() {
			got = append(got, e.Error())
		}
		if !slices.Equal(got, want) {
			t.Fatalf("case %d:\n%s got:\n%s\nwant:\n%s", i, doc, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// detect's names are the keys of the detect block, and every key is
	// named by some rule (a range end by its range at least): a parameter
	// renamed on one side fails here.
	keysOf := func(typ reflect.Type, pre string) []string {
		var out []string
		for i := range typ.NumField() {
			out = append(out, pre+typ.Field(i).Tag.Get("yaml"))
		}
		return out
	}
	blockKeys := keysOf(reflect.TypeFor[rawDetect](), "")
	blockKeys = append(blockKeys, keysOf(reflect.TypeFor[rawRange](), "range_a.")...)
	blockKeys = append(blockKeys, keysOf(reflect.TypeFor[rawRange](), "range_b.")...)
	for name := range named {
		if !slices.Contains(blockKeys, name) {
			t.Errorf("detect names parameter %q, which is no key of the detect block", name)
		}
	}
	for _, k := range blockKeys {
		if !named[k] && !named[yamlfile.ParentPath(k)] {
			t.Errorf("no error of the draw names detect.%s", k)
		}
	}

	// Both outcomes must be common, or the draw tests little.
	t.Logf("%d accepted, %d rejected", accepted, rejected)
	if accepted < 300 || rejected < 300 {
		t.Errorf("%d accepted, %d rejected: the draw is lopsided", accepted, rejected)
	}
}

// lineNo is the line of a "file:line: ..." error.
func lineNo(e string) int {
	_, rest, _ := strings.Cut(e, ":")
	n, _, _ := strings.Cut(rest, ":")
	v, _ := strconv.Atoi(n)
	return v
}

// TestDetectErrors covers what the fixtures under testdata/config/bad
// (one per rule) do not: a rule between two keys is reported on the key the
// file sets, every broken rule is reported at once, and a rule quoting a
// key that did not decode is left out.
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
		{"lockout after the reclose window", "detect:\n  reclose_window: 30s\n",
			"site.yaml:2: detect.reclose_window: lockout_after 1m0s must not exceed reclose_window 30s"},
		{"overvoltage below the swell threshold", "detect:\n  swell_threshold: 1.3\n",
			"site.yaml:2: detect.swell_threshold: overvoltage_max 1.2 must be above swell_threshold 1.3"},
		{"not a mapping", "detect: 5\n", `site.yaml:1: detect: want a mapping, got "5"`},
		{"several", "detect:\n  range_b: {low: 0}\n  swell_threshold: 0.9\n  instantaneous_max: 0s\n  comm_loss_after: 0s\n  sustained_after: -1m\n",
			"site.yaml:2: detect.range_b.low: must be > 0, got 0\n" +
				"site.yaml:3: detect.swell_threshold: 0.9 must be above 1 pu\n" +
				"site.yaml:4: detect.instantaneous_max: must be > 0, got 0s\n" +
				"site.yaml:5: detect.comm_loss_after: must be > 0, got 0s\n" +
				"site.yaml:6: detect.sustained_after: must be > 0, got -1m0s"},
		// A rule quoting a key that did not decode would judge the default
		// in its place: it is left out, the others are reported.
		{"nan", "detect:\n  range_a: {low: .nan}\n  sag_threshold: 0.99\n  hysteresis: 0.05\n",
			"site.yaml:2: detect.range_a.low: must be a finite number, got NaN\n" +
				"site.yaml:4: detect.hysteresis: sag_threshold + hysteresis (0.99 + 0.05) must stay below 1 pu"},
		{"nan and a rule quoting it", "detect:\n  range_a: {low: .nan}\n  band_hysteresis: 0.06\n",
			"site.yaml:2: detect.range_a.low: must be a finite number, got NaN"},
		{"bad duration and a rule quoting it", "detect:\n  momentary_max: 1 sec\n  instantaneous_max: 4s\n",
			`site.yaml:2: detect.momentary_max: invalid duration "1 sec" (use a Go duration such as 1s or 250ms)`},
		{"a range that is not a mapping", "detect:\n  range_a: 5\n  range_b: {low: 0.96}\n",
			`site.yaml:2: detect.range_a: want a mapping, got "5"`},
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
