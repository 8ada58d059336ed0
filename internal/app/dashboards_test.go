package app

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/testenv"
)

// The Grafana files under deploy/grafana, as far as the test reads them.
type grafanaDatasourceFile struct {
	Datasources []struct {
		UID      string `yaml:"uid"`
		Type     string `yaml:"type"`
		Database string `yaml:"database"`
		JSONData struct {
			Version      string `yaml:"version"`
			DBName       string `yaml:"dbName"`
			TimeInterval string `yaml:"timeInterval"`
		} `yaml:"jsonData"`
	} `yaml:"datasources"`
}

type grafanaDSRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaDashboard struct {
	UID        string         `json:"uid"`
	Title      string         `json:"title"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []grafanaVar `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []grafanaAnnotation `json:"list"`
	} `json:"annotations"`
}

type grafanaPanel struct {
	FieldConfig struct {
		Defaults struct {
			Unit       string `json:"unit"`
			Thresholds struct {
				Steps []struct {
					Color string   `json:"color"`
					Value *float64 `json:"value"`
				} `json:"steps"`
			} `json:"thresholds"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	ID            int            `json:"id"`
	Type          string         `json:"type"`
	Title         string         `json:"title"`
	TimeFrom      string         `json:"timeFrom"`
	MaxDataPoints int            `json:"maxDataPoints"`
	Datasource    *grafanaDSRef  `json:"datasource"`
	Panels        []grafanaPanel `json:"panels"` // a collapsed row's
	Targets       []struct {
		RefID      string        `json:"refId"`
		Query      string        `json:"query"`
		RawQuery   bool          `json:"rawQuery"`
		Datasource *grafanaDSRef `json:"datasource"`
	} `json:"targets"`
}

type grafanaVar struct {
	Name       string        `json:"name"`
	Type       string        `json:"type"`
	Query      string        `json:"query"`
	Multi      bool          `json:"multi"`
	IncludeAll bool          `json:"includeAll"`
	Datasource *grafanaDSRef `json:"datasource"`
	Current    struct {
		Value any `json:"value"`
	} `json:"current"`
}

type grafanaAnnotation struct {
	Name          string        `json:"name"`
	BuiltIn       int           `json:"builtIn"`
	Datasource    *grafanaDSRef `json:"datasource"`
	Query         string        `json:"query"`
	TextColumn    string        `json:"textColumn"`
	TagsColumn    string        `json:"tagsColumn"`
	TimeEndColumn string        `json:"timeEndColumn"`
	TitleColumn   string        `json:"titleColumn"`
}

// grafanaRoundInterval is Grafana's rounding of range/maxDataPoints to a
// readable $__interval (kbn.roundInterval): each bound maps to a step.
var grafanaRoundInterval = []struct{ below, step time.Duration }{
	{15 * time.Millisecond, 10 * time.Millisecond},
	{35 * time.Millisecond, 20 * time.Millisecond},
	{75 * time.Millisecond, 50 * time.Millisecond},
	{150 * time.Millisecond, 100 * time.Millisecond},
	{350 * time.Millisecond, 200 * time.Millisecond},
	{750 * time.Millisecond, 500 * time.Millisecond},
	{1500 * time.Millisecond, time.Second},
	{3500 * time.Millisecond, 2 * time.Second},
	{7500 * time.Millisecond, 5 * time.Second},
	{12500 * time.Millisecond, 10 * time.Second},
	{17500 * time.Millisecond, 15 * time.Second},
	{25 * time.Second, 20 * time.Second},
	{45 * time.Second, 30 * time.Second},
	{90 * time.Second, time.Minute},
	{210 * time.Second, 2 * time.Minute},
	{450 * time.Second, 5 * time.Minute},
	{750 * time.Second, 10 * time.Minute},
	{1050 * time.Second, 15 * time.Minute},
	{1500 * time.Second, 20 * time.Minute},
	{2700 * time.Second, 30 * time.Minute},
	{5400 * time.Second, time.Hour},
	{9000 * time.Second, 2 * time.Hour},
	{16200 * time.Second, 3 * time.Hour},
	{27000 * time.Second, 6 * time.Hour},
	{43200 * time.Second, 12 * time.Hour},
	{86400 * time.Second, 24 * time.Hour},
}

// grafanaInterval is $__interval for a range: range/maxDataPoints rounded
// as Grafana rounds it, never below the data source's timeInterval.
func grafanaInterval(from, to time.Time, maxDataPoints int, min time.Duration) time.Duration {
	iv := 7 * 24 * time.Hour
	raw := to.Sub(from) / time.Duration(maxDataPoints)
	for _, r := range grafanaRoundInterval {
		if raw < r.below {
			iv = r.step
			break
		}
	}
	return max(iv, min)
}

// grafanaDuration formats an interval as Grafana writes it into InfluxQL
// (1s, 200ms, 5m, 1h).
func grafanaDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// grafanaRegexEscape escapes a value for an InfluxQL /regex/ the way
// Grafana's InfluxDB data source does for multi-value variables.
var grafanaRegexEscape = strings.NewReplacer(`\`, `\\`, `^`, `\^`, `$`, `\$`, `*`, `\*`, `+`, `\+`, `?`, `\?`,
	`.`, `\.`, `(`, `\(`, `)`, `\)`, `|`, `\|`, `[`, `\[`, `]`, `\]`, `{`, `\{`, `}`, `\}`, `/`, `\/`)

// grafanaVars holds resolved dashboard variables and interpolates queries
// as Grafana's InfluxDB data source does: a single-value variable as it
// is, a multi-value or include-all one as its values regex-escaped, joined
// as (a|b); $timeFilter as time >= <from>ms and time <= <to>ms; $__interval
// and $__interval_ms from the range.
type grafanaVars struct {
	values map[string][]string
	multi  map[string]bool
}

func (g *grafanaVars) format(name string) string {
	vs := g.values[name]
	if !g.multi[name] {
		return strings.Join(vs, ",")
	}
	esc := make([]string, len(vs))
	for i, v := range vs {
		esc[i] = grafanaRegexEscape.Replace(v)
	}
	if len(esc) == 1 {
		return esc[0]
	}
	return "(" + strings.Join(esc, "|") + ")"
}

func (g *grafanaVars) interpolate(q string, from, to time.Time, interval time.Duration) (string, error) {
	builtin := map[string]string{
		"timeFilter":    fmt.Sprintf("time >= %dms and time <= %dms", from.UnixMilli(), to.UnixMilli()),
		"__interval":    grafanaDuration(interval),
		"interval":      grafanaDuration(interval),
		"__interval_ms": strconv.FormatInt(interval.Milliseconds(), 10),
	}
	var missing []string
	out := regexp.MustCompile(`\$\{(\w+)\}|\[\[(\w+)\]\]|\$(\w+)`).ReplaceAllStringFunc(q, func(m string) string {
		name := strings.Trim(m, "${}[]")
		if v, ok := builtin[name]; ok {
			return v
		}
		if _, ok := g.values[name]; ok {
			return g.format(name)
		}
		missing = append(missing, m)
		return m
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("undefined variables %v", missing)
	}
	return out, nil
}

// seriesValues returns every value of a column across series.
func seriesValues(series []testenv.Series, column string) []string {
	var out []string
	for _, s := range series {
		c := s.Column(column)
		if c < 0 {
			continue
		}
		for _, v := range s.Values {
			if v[c] != nil {
				out = append(out, fmt.Sprint(v[c]))
			}
		}
	}
	return out
}

// checkHasData fails unless the result has a series and every column but
// time has a value in some row: a column that is null everywhere names a
// field the schema does not write, or one this run should have produced.
func checkHasData(t *testing.T, series []testenv.Series) {
	t.Helper()
	if len(series) == 0 {
		t.Fatal("no series")
	}
	filled := map[string]bool{}
	for _, s := range series {
		for _, row := range s.Values {
			for i, v := range row {
				if v != nil {
					filled[s.Columns[i]] = true
				}
			}
		}
	}
	for _, s := range series {
		for _, c := range s.Columns {
			if c != "time" && !filled[c] {
				t.Errorf("column %q has no value in any of %d series", c, len(series))
			}
		}
	}
}

// checkVoltageBands requires every per-unit panel (a title with "(pu)")
// to draw detection's default ANSI C84.1 ranges: red below Range B,
// orange in Range B below Range A, green in Range A, orange above it, red
// above Range B.
func checkVoltageBands(t *testing.T, file string, panels []grafanaPanel) int {
	t.Helper()
	p := detect.DefaultParams()
	want := fmt.Sprint("red:- orange:", p.RangeB.Low, " green:", p.RangeA.Low, " orange:", p.RangeA.High, " red:", p.RangeB.High)
	n := 0
	for _, pn := range panels {
		if !strings.Contains(pn.Title, "(pu)") {
			continue
		}
		n++
		var got []string
		for _, st := range pn.FieldConfig.Defaults.Thresholds.Steps {
			v := "-"
			if st.Value != nil {
				v = fmt.Sprint(*st.Value)
			}
			got = append(got, st.Color+":"+v)
		}
		if g := strings.Join(got, " "); g != want {
			t.Errorf("%s: panel %q thresholds %q, want the C84.1 ranges %q", file, pn.Title, g, want)
		}
	}
	return n
}

// dashboardFleet is the outage fleet of outage_test.go (two feeders joined
// by a tie switch) with a scenario that makes every measurement the
// dashboards read: a comms loss (ok=0, <field>_q, comm_lost events), a
// lockout (trips, recloses, an outage with a critical customer), a
// restoration in two steps (tie switch, then the repaired recloser), and
// sustained_after short enough that the steps count in IEEE 1366.
func dashboardFleet(t *testing.T, influx *testenv.Influx) *daemon {
	t.Helper()
	simCfg, ids := outageSimConfig(t)
	urls := startSim(t, simCfg, `
seed: 1
start: 2025-01-15T12:00:00Z
events:
  - {at: 1s, action: comms_loss, target: F2-BRK, mode: silent}
  - {at: 3s, action: fault, target: F1-S2, permanent: true}
  - {at: 4s, action: comms_restore, target: F2-BRK}
  - {at: 7s, action: open, target: F1-SW}
  - {at: 8s, action: close, target: TIE-12}
  - {at: 10s, action: clear_fault, target: F1-S2}
  - {at: 11s, action: close, target: F1-REC}
`)
	return startDaemon(t, outageConfig(t, ids, urls, influx, "", "detect: {sustained_after: 2s}"))
}

// readmeRollups returns the InfluxQL statements of the README's retention
// and rollup block, one per paragraph, without comment lines.
func readmeRollups(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const marker = "-- retention and one-minute rollups"
	_, block, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("README.md has no block starting %q", marker)
	}
	_, block, _ = strings.Cut(block, "\n")
	block, _, _ = strings.Cut(block, "```")
	var stmts []string
	for _, para := range strings.Split(block, "\n\n") {
		var lines []string
		for _, ln := range strings.Split(para, "\n") {
			if ln = strings.TrimSpace(ln); ln != "" && !strings.HasPrefix(ln, "--") {
				lines = append(lines, ln)
			}
		}
		if len(lines) > 0 {
			stmts = append(stmts, strings.Join(lines, " "))
		}
	}
	if len(stmts) == 0 {
		t.Fatal("README.md's rollup block has no statement")
	}
	return stmts
}

// TestDashboardQueries loads every dashboard under deploy/grafana, runs
// each of its queries (panels, annotations, variables) as Grafana would
// send it against a real InfluxDB that a real rtusim + feederd run fed,
// and requires data in every column. Then it applies the README's
// retention and continuous-query statements to the same database and
// requires the one-minute rollups to count every poll line.
func TestDashboardQueries(t *testing.T) {
	deploy := filepath.Join("..", "..", "deploy", "grafana")
	var dsFile grafanaDatasourceFile
	b, err := os.ReadFile(filepath.Join(deploy, "provisioning", "datasources", "feederd-influxdb.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &dsFile); err != nil {
		t.Fatalf("datasource file: %v", err)
	}
	if len(dsFile.Datasources) != 1 {
		t.Fatalf("datasource file: %d data sources, want 1", len(dsFile.Datasources))
	}
	ds := dsFile.Datasources[0]
	if ds.Type != "influxdb" || ds.JSONData.Version != "InfluxQL" || ds.JSONData.DBName != testenv.InfluxDatabase || ds.Database != testenv.InfluxDatabase {
		t.Fatalf("data source %+v: want type influxdb, InfluxQL, database %q", ds, testenv.InfluxDatabase)
	}
	minInterval, err := time.ParseDuration(ds.JSONData.TimeInterval)
	if err != nil {
		t.Fatalf("data source timeInterval: %v", err)
	}
	files, err := filepath.Glob(filepath.Join(deploy, "dashboards", "*.json"))
	if err != nil || len(files) != 4 {
		t.Fatalf("dashboards: %v %v, want 4 files", files, err)
	}

	influx := testenv.StartInfluxWithCQ(t)
	start := time.Now().Add(-time.Minute)
	d := dashboardFleet(t, influx)
	eventually(t, 45*time.Second, "the scenario's outage restored and counted in IEEE 1366", func() error {
		rows := influx.Query(t, `SELECT last("status") FROM feeder_outage WHERE device='F1-REC'`)
		if len(rows) != 1 || rows[0].Values[0][1] != "restored" {
			return fmt.Errorf("outage at F1-REC: %v", rows)
		}
		rows = influx.Query(t, `SELECT last("ci") FROM feeder_reliability WHERE feeder='F1'`)
		if len(rows) != 1 || toInt(rows[0].Values[0][1]) == 0 {
			return fmt.Errorf("F1's CI: %v", rows)
		}
		rows = influx.Query(t, `SELECT "stage" FROM feeder_event WHERE kind='comm_lost' AND device='F2-BRK'`)
		if len(rows) != 1 || rows[0].Values[0][1] != "end" {
			return fmt.Errorf("F2-BRK's comm_lost: %v", rows)
		}
		return nil
	})

	queries, bandPanels := 0, 0
	uids := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var db grafanaDashboard
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		if err := dec.Decode(&db); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if prev, dup := uids[db.UID]; dup || db.UID == "" {
			t.Fatalf("%s: uid %q empty or also in %s", f, db.UID, prev)
		}
		uids[db.UID] = f
		checkDS := func(where string, ref *grafanaDSRef) {
			if ref == nil || ref.UID != ds.UID || ref.Type != "influxdb" {
				t.Errorf("%s: %s: data source %+v, want the provisioned %q", f, where, ref, ds.UID)
			}
		}
		now := time.Now()
		vars := &grafanaVars{values: map[string][]string{}, multi: map[string]bool{}}
		for _, v := range db.Templating.List {
			vars.multi[v.Name] = v.Multi || v.IncludeAll
			var options []string
			switch v.Type {
			case "custom":
				options = strings.Split(v.Query, ",")
			case "query":
				checkDS("variable "+v.Name, v.Datasource)
				q, err := vars.interpolate(v.Query, start, now, minInterval)
				if err != nil {
					t.Fatalf("%s: variable %s: %v", f, v.Name, err)
				}
				options = seriesValues(influx.Query(t, q), "value")
				queries++
			default:
				t.Fatalf("%s: variable %s: type %q not handled", f, v.Name, v.Type)
			}
			if len(options) == 0 {
				t.Fatalf("%s: variable %s has no values", f, v.Name)
			}
			cur := fmt.Sprint(v.Current.Value)
			switch {
			case strings.Contains(cur, "$__all"):
				vars.values[v.Name] = options
			case strings.Contains(v.Query, cur) || v.Type == "custom":
				vars.values[v.Name] = []string{strings.Trim(cur, "[]")}
			default:
				vars.values[v.Name] = options[:1]
			}
		}

		var panels []grafanaPanel
		for _, p := range db.Panels {
			panels = append(panels, p)
			panels = append(panels, p.Panels...)
		}
		bandPanels += checkVoltageBands(t, f, panels)
		ids := map[int]bool{}
		for _, p := range panels {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d twice", f, p.ID)
			}
			ids[p.ID] = true
			if p.Type == "row" {
				continue
			}
			checkDS("panel "+p.Title, p.Datasource)
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", f, p.Title)
			}
			from := start
			switch p.TimeFrom {
			case "":
			case "now/y":
				from = time.Date(now.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
			default:
				t.Fatalf("%s: panel %q: timeFrom %q not handled", f, p.Title, p.TimeFrom)
			}
			mdp := p.MaxDataPoints
			if mdp == 0 {
				mdp = 1000
			}
			iv := grafanaInterval(from, now, mdp, minInterval)
			for _, tg := range p.Targets {
				checkDS("panel "+p.Title, tg.Datasource)
				if !tg.RawQuery {
					t.Errorf("%s: panel %q %s: not a raw InfluxQL query", f, p.Title, tg.RefID)
				}
				q, err := vars.interpolate(tg.Query, from, now, iv)
				if err != nil {
					t.Fatalf("%s: panel %q %s: %v", f, p.Title, tg.RefID, err)
				}
				queries++
				t.Run(filepath.Base(f)+"/"+p.Title+"/"+tg.RefID, func(t *testing.T) {
					t.Logf("%s", q)
					checkHasData(t, influx.Query(t, q))
				})
			}
		}
		for _, a := range db.Annotations.List {
			if a.BuiltIn == 1 {
				continue
			}
			checkDS("annotation "+a.Name, a.Datasource)
			q, err := vars.interpolate(a.Query, start, now, minInterval)
			if err != nil {
				t.Fatalf("%s: annotation %s: %v", f, a.Name, err)
			}
			queries++
			t.Run(filepath.Base(f)+"/annotation "+a.Name, func(t *testing.T) {
				t.Logf("%s", q)
				series := influx.Query(t, q)
				checkHasData(t, series)
				want := append(strings.Split(a.TagsColumn, ","), a.TextColumn, a.TimeEndColumn)
				for _, c := range want {
					if c != "" && series[0].Column(c) < 0 {
						t.Errorf("column %q (named by the annotation) not in %v", c, series[0].Columns)
					}
				}
			})
		}
	}
	if bandPanels != 2 {
		t.Errorf("%d per-unit voltage panels, want 2 (the overview's)", bandPanels)
	}
	// Four dashboards: 7 variable queries, 26 panel queries, 3 annotations.
	if queries != 36 {
		t.Errorf("%d queries checked, want 36 (a dashboard changed: update the count)", queries)
	}

	t.Run("README rollups", func(t *testing.T) {
		for _, s := range readmeRollups(t) {
			influx.Exec(t, s)
		}
		if err := d.stop(); err != nil {
			t.Fatal(err)
		}
		raw := map[string]string{}
		for _, s := range influx.Query(t, `SELECT count("ok") FROM "feederd"."autogen"."feeder_point" GROUP BY "device"`) {
			raw[s.Tags["device"]] = fmt.Sprint(s.Values[0][1])
		}
		if len(raw) != 5 {
			t.Fatalf("poll lines of %d devices, want 5: %v", len(raw), raw)
		}
		// The continuous query runs at each minute's end over the last
		// two minutes: within about a minute of the daemon's stop, every
		// poll line is in a rollup.
		eventually(t, 75*time.Second, "one-minute rollups of every poll line", func() error {
			got := map[string]string{}
			for _, s := range influx.Query(t, `SELECT sum("polls") FROM "feederd"."rollup"."feeder_point_1m" GROUP BY "device"`) {
				got[s.Tags["device"]] = fmt.Sprint(s.Values[0][1])
			}
			if fmt.Sprint(got) != fmt.Sprint(raw) {
				return fmt.Errorf("rolled-up polls %v, raw poll lines %v", got, raw)
			}
			return nil
		})
		rows := influx.Query(t, `SELECT "mean_voltage_a", "min_voltage_a", "max_voltage_a", "ok", "polls" FROM "feederd"."rollup"."feeder_point_1m" WHERE "device" = 'F1-BRK'`)
		checkHasData(t, rows)
		for _, v := range rows[0].Values {
			lo, _ := strconv.ParseFloat(fmt.Sprint(v[2]), 64)
			mean, _ := strconv.ParseFloat(fmt.Sprint(v[1]), 64)
			hi, _ := strconv.ParseFloat(fmt.Sprint(v[3]), 64)
			if v[1] != nil && !(lo <= mean && mean <= hi) {
				t.Errorf("rollup row %v: mean outside min..max", v)
			}
		}
		var keys []string
		for _, s := range influx.Query(t, `SHOW TAG KEYS FROM "feederd"."rollup"."feeder_point_1m"`) {
			keys = append(keys, seriesValues([]testenv.Series{s}, "tagKey")...)
		}
		sort.Strings(keys)
		if got := strings.Join(keys, ","); got != "device,feeder" {
			t.Errorf("rollup tags %q, want device,feeder (GROUP BY * keeps the tags)", got)
		}
	})
}
