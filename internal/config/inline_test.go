package config

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

// memFS serves files from a map, as Load's ReadFile.
func memFS(files map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		s, ok := files[p]
		if !ok {
			return nil, fmt.Errorf("open %s: %w", p, fs.ErrNotExist)
		}
		return []byte(s), nil
	}
}

const inlineRelay = "name: relay\npoints: [{name: closed, table: coil, address: 0, type: bool}]\n"

// inlineSite is a valid configuration with room for one more top-level
// block at its start.
func inlineSite(head string) string {
	return head + `profiles: [relay.yaml]
links: [{id: gw, url: "tcp://h:502"}]
devices: [{id: D1, link: gw, unit: 1, profile: relay, feeder: F1}]
`
}

// TestLoadInline covers the decoder and file handling with small files held
// in memory: what a fixture per case would not make clearer.
func TestLoadInline(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // "site.yaml" is loaded
		want  string            // "" for success
	}{
		{"anchors and aliases", map[string]string{
			"site.yaml": `profiles: [relay.yaml]
links: [{id: gw, url: "tcp://h:502"}]
devices:
  - {id: D1, link: gw, unit: 1, profile: relay, feeder: F1, labels: &north {substation: north}}
  - {id: D2, link: gw, unit: 2, profile: relay, feeder: F1, upstream: D1, labels: *north}
`, "relay.yaml": inlineRelay}, ""},
		{"merge key", map[string]string{
			"site.yaml": `profiles: [relay.yaml]
links: [{id: gw, url: "tcp://h:502"}]
devices:
  - {id: D1, link: gw, unit: 1, profile: relay, feeder: F1, quirks: &q {max_gap: 2}}
  - {id: D2, link: gw, unit: 2, profile: relay, feeder: F1, upstream: D1, quirks: {<<: *q}}
`, "relay.yaml": inlineRelay}, `site.yaml:5: devices[1].quirks.<<: merge keys are not supported`},
		{"two documents", map[string]string{"site.yaml": inlineSite("") + "---\npoll: {}\n", "relay.yaml": inlineRelay},
			"site.yaml:4: only one YAML document is allowed"},
		{"list wanted", map[string]string{"site.yaml": inlineSite("poll: {max_gap: [1]}\n"), "relay.yaml": inlineRelay},
			`site.yaml:1: poll.max_gap: want an integer, got a list`},
		{"mapping wanted", map[string]string{"site.yaml": "poll: 5\n" + inlineSite(""), "relay.yaml": inlineRelay},
			`site.yaml:1: poll: want a mapping, got "5"`},
		{"quoted number is not a number", map[string]string{"site.yaml": inlineSite("poll: {stale_after: \"3\"}\n"), "relay.yaml": inlineRelay},
			`site.yaml:1: poll.stale_after: want an integer, got "3"`},
		{"token file", map[string]string{"site.yaml": inlineSite("influx: {url: 'http://i:8086', bucket: b, token_file: secret/token}\n"),
			"relay.yaml": inlineRelay, "secret/token": "  u:p \n"}, ""},
		{"token file missing", map[string]string{"site.yaml": inlineSite("influx: {url: 'http://i:8086', bucket: b, token_file: token}\n"), "relay.yaml": inlineRelay},
			`site.yaml:1: influx.token_file: token file "token" not found`},
		{"token file empty", map[string]string{"site.yaml": inlineSite("influx: {url: 'http://i:8086', bucket: b, token_file: token}\n"), "relay.yaml": inlineRelay, "token": "\n"},
			`site.yaml:1: influx.token_file: token file "token" is empty`},
		{"token env and file", map[string]string{"site.yaml": inlineSite("influx: {url: 'http://i:8086', bucket: b, token_env: T, token_file: token}\n"), "relay.yaml": inlineRelay},
			`site.yaml:1: influx.token_file: set token_env or token_file, not both`},
		{"absolute profile path", map[string]string{"site.yaml": strings.Replace(inlineSite(""), "relay.yaml", "/etc/feederd/relay.yaml", 1), "/etc/feederd/relay.yaml": inlineRelay}, ""},
		{"profile listed twice", map[string]string{"site.yaml": strings.Replace(inlineSite(""), "[relay.yaml]", "[relay.yaml, ./relay.yaml]", 1), "relay.yaml": inlineRelay},
			`site.yaml:1: profiles[1]: profile file "./relay.yaml" listed twice (first at line 1)`},
		{"two profiles with one name", map[string]string{"site.yaml": strings.Replace(inlineSite(""), "[relay.yaml]", "[relay.yaml, relay2.yaml]", 1), "relay.yaml": inlineRelay, "relay2.yaml": inlineRelay},
			`site.yaml:1: profiles[1]: profile name "relay" is already used by relay.yaml`},
		{"bad http listen", map[string]string{"site.yaml": inlineSite("http: {listen: localhost}\n"), "relay.yaml": inlineRelay},
			`site.yaml:1: http.listen: invalid listen address "localhost" (want host:port)`},
		{"queue smaller than batch", map[string]string{"site.yaml": inlineSite("influx: {url: 'http://i:8086', bucket: b, batch_size: 10, queue_size: 5}\n"), "relay.yaml": inlineRelay},
			`site.yaml:1: influx.queue_size: queue_size 5 is smaller than batch_size 10`},
		{"several errors in one line", map[string]string{"site.yaml": inlineSite("poll: {interval: 0s, stale_after: 0, max_gap: 200}\n"), "relay.yaml": inlineRelay},
			"site.yaml:1: poll.interval: must be > 0, got 0s\n" +
				"site.yaml:1: poll.max_gap: max_gap 200 out of range 0..124\n" +
				"site.yaml:1: poll.stale_after: stale_after 0 must be at least 1"},
		{"misspelt key is not also missing", map[string]string{"site.yaml": `profiles: [relay.yaml]
links: [{id: gw, url: "tcp://h:502"}]
devices: [{id: D1, link: gw, unit: 1, profile: relay, fedeer: F1}]
`, "relay.yaml": inlineRelay}, `site.yaml:3: devices[0].fedeer: unknown key "fedeer" (did you mean "feeder"?)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Load("site.yaml", LoadOptions{ReadFile: memFS(tc.files)})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tc.want == "":
				if len(m.Devices) == 0 {
					t.Fatalf("no devices")
				}
			case err == nil:
				t.Fatalf("Load succeeded, want %s", tc.want)
			case err.Error() != tc.want:
				t.Errorf("error:\n got: %s\nwant: %s", err, tc.want)
			}
		})
	}
}

func TestLoadInlineValues(t *testing.T) {
	m, err := Load("site.yaml", LoadOptions{ReadFile: memFS(map[string]string{
		"site.yaml":    inlineSite("influx: {url: 'http://i:8086', bucket: b, token_file: secret/token}\n"),
		"relay.yaml":   inlineRelay,
		"secret/token": "  u:p \n",
	})})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Influx.Token.Reveal(); got != "u:p" {
		t.Errorf("token %q, want %q (white space cut)", got, "u:p")
	}
}

// TestDecodeBudget: aliases multiply work; a small file must not make the
// decoder run away.
func TestDecodeBudget(t *testing.T) {
	var b strings.Builder
	b.WriteString("x: &p [")
	for i := range 2000 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "{name: p%d, table: coil, address: %d, type: bool}", i, i)
	}
	b.WriteString("]\n")
	b.WriteString("devices: [")
	for i := range 50 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("{points: *p}")
	}
	b.WriteString("]\n")
	_, err := Load("site.yaml", LoadOptions{ReadFile: memFS(map[string]string{"site.yaml": b.String()})})
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want *Errors", err)
	}
	n := 0
	for _, e := range *errs {
		if e.Msg == "the document is too large (too many aliases?)" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d budget errors, want 1", n)
	}
}

// TestBadProfiles covers the rules that only a profile file can break.
func TestBadProfiles(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{"no name", "points: [{name: x, table: coil, address: 0, type: bool}]\n",
			"p.yaml:1: name: required"},
		{"bad name", "name: sel 751\npoints: [{name: x, table: coil, address: 0, type: bool}]\n",
			`p.yaml:1: name: invalid profile name "sel 751" (want [A-Za-z0-9_.-]+)`},
		{"no points", "name: p\n",
			"p.yaml:1: points: a profile needs at least one point"},
		{"duplicate point name", "name: p\npoints:\n  - {name: x, table: coil, address: 0, type: bool}\n  - {name: x, table: coil, address: 1, type: bool}\n",
			`p.yaml:4: points[1].name: duplicate point name "x" (line 3)`},
		{"duplicate role", "name: p\npoints:\n  - {name: va, table: input, address: 0, type: float32, role: voltage_a}\n  - {name: vb, table: input, address: 2, type: float32, role: voltage_a}\n",
			`p.yaml:4: points[1].role: duplicate role voltage_a: already point "va" (line 3)`},
		{"field named like an earlier role", "name: p\npoints:\n  - {name: v1, table: input, address: 0, type: float32, role: voltage_a}\n  - {name: voltage_a, table: input, address: 2, type: float32}\n",
			`p.yaml:4: points[1].name: point "voltage_a" would write InfluxDB field "voltage_a", as point "v1" does (line 3)`},
		{"role named like an earlier field", "name: p\npoints:\n  - {name: voltage_a, table: input, address: 0, type: float32}\n  - {name: v1, table: input, address: 2, type: float32, role: voltage_a}\n",
			`p.yaml:4: points[1].role: point "v1" would write InfluxDB field "voltage_a", as point "voltage_a" does (line 3)`},
		{"quality key of a later point", "name: p\npoints:\n  - {name: kw_q, table: input, address: 0, type: float32}\n  - {name: kw, table: input, address: 2, type: float32}\n",
			`p.yaml:4: points[1].name: point "kw" would write InfluxDB field "kw_q" when not good, the field of point "kw_q" (line 3)`},
		{"quality key of a role", "name: p\npoints:\n  - {name: v1, table: input, address: 0, type: float32, role: voltage_a}\n  - {name: voltage_a_q, table: input, address: 2, type: float32}\n",
			`p.yaml:4: points[1].name: point "voltage_a_q" would write InfluxDB field "voltage_a_q", the quality field of point "v1" (line 3)`},
		{"poll field", "name: p\npoints: [{name: ok, table: coil, address: 0, type: bool}]\n",
			`p.yaml:2: points[0].name: point "ok" would write InfluxDB field "ok", which every poll line has`},
		{"fields that do not clash", "name: p\npoints:\n  - {name: breaker_closed, table: coil, address: 0, type: bool, role: breaker_closed}\n" +
			"  - {name: seq, table: holding, address: 0, type: string, length: 2}\n  - {name: ok_q, table: holding, address: 2, type: string, length: 2}\n" +
			"  - {name: q, table: holding, address: 4, type: uint16}\n", ""},
		{"overlap, earlier address declared later", "name: p\npoints:\n  - {name: b, table: holding, address: 11, type: int16}\n  - {name: a, table: holding, address: 10, type: int32, order: CDAB}\n",
			`p.yaml:4: points[1].address: holding 10..11 as int32 CDAB overlaps point "b" (holding 11 as int16, line 3)`},
		{"overlap given by register", "name: p\npoints:\n  - {name: a, table: input, register: 1, type: float64}\n  - {name: b, table: input, register: 4, type: float64}\n",
			`p.yaml:4: points[1].register: input 3..6 as float64 ABCD overlaps point "a" (input 0..3 as float64 ABCD, line 3)`},
		{"same address in other tables", "name: p\npoints:\n  - {name: a, table: input, address: 0, type: float32}\n  - {name: b, table: holding, address: 0, type: float32}\n  - {name: c, table: coil, address: 0, type: bool}\n  - {name: d, table: discrete_input, address: 0, type: bool}\n", ""},
		{"bit over a float", "name: p\npoints:\n  - {name: a, table: input, address: 0, type: float32}\n  - {name: b, table: input, address: 1, type: bit, bit: 3}\n",
			`p.yaml:4: points[1].address: input 1 as bit 3 overlaps point "a" (input 0..1 as float32 ABCD, line 3)`},
		{"strings overlap", "name: p\npoints:\n  - {name: a, table: holding, address: 0, type: string, length: 8}\n  - {name: b, table: holding, address: 7, type: string, length: 2, order: BADC}\n",
			`p.yaml:4: points[1].address: holding 7..8 as string[2] BADC overlaps point "a" (holding 0..7 as string[8] ABCD, line 3)`},
		{"every point error", "name: p\npoints:\n  - {name: A, table: holdings, address: -1, type: int16, bit: 2, length: 3, order: ABDC, scale: 0, role: power}\n",
			`p.yaml:3: points[0].name: invalid point name "A" (want [a-z0-9_]+)` + "\n" +
				`p.yaml:3: points[0].table: unknown table "holdings" (want coil, discrete_input, holding or input)` + "\n" +
				`p.yaml:3: points[0].bit: only for type bit` + "\n" +
				`p.yaml:3: points[0].length: only for type string` + "\n" +
				`p.yaml:3: points[0].order: unknown order "ABDC" (want ABCD, CDAB, BADC or DCBA)` + "\n" +
				`p.yaml:3: points[0].scale: must not be 0` + "\n" +
				`p.yaml:3: points[0].role: unknown role "power"` + "\n" +
				`p.yaml:3: points[0].address: address -1 out of range 0..65535`},
		{"missing fields", "name: p\npoints:\n  - {name: s}\n  - {name: b, table: holding, address: 0, type: bit}\n  - {name: t, table: holding, address: 9, type: string, length: 200, role: energy}\n",
			"p.yaml:3: points[0].table: required (coil, discrete_input, holding or input)\n" +
				"p.yaml:3: points[0].type: required\n" +
				"p.yaml:3: points[0].address: required (or register, the 1-based number)\n" +
				"p.yaml:4: points[1].bit: required for type bit (0..15)\n" +
				"p.yaml:5: points[2].length: length 200 out of range 1..125\n" +
				"p.yaml:5: points[2].role: a string point cannot have a role"},
		{"last register", "name: p\npoints: [{name: a, table: holding, register: 65536, type: uint16}]\n", ""},
		{"syntax", "name: p\npoints: [\n", "p.yaml:2: did not find expected node content"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseProfile([]byte(tc.data), "p.yaml")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ParseProfile: %v", err)
				}
				if p.Source != "p.yaml" || len(p.Points) == 0 {
					t.Errorf("profile %+v", p)
				}
				return
			}
			if p != nil || err == nil {
				t.Fatalf("ParseProfile succeeded, want %s", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n got: %s\nwant: %s", err, tc.want)
			}
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Errorf("error is %T, want *Errors", err)
			}
		})
	}
}
