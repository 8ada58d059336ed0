package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/feederd/feederd/internal/testenv"
)

const promtoolTimeout = 2 * time.Minute

// promtool runs promtool with args (stdin when given) and returns its exit
// code and combined output.
func promtool(t *testing.T, stdin []byte, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), promtoolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.PromtoolPath(t), args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("promtool %v: no answer within %s", args, promtoolTimeout)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("promtool %v: %v", args, err)
	}
	return 0, string(out)
}

type promRulesFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type promTestFile struct {
	Tests []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			AlertName string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestPrometheusRules checks deploy/prometheus with promtool: the rules
// are valid, their unit tests pass, every alert has a unit test in which
// it fires and one in which it does not, and the example config loads.
func TestPrometheusRules(t *testing.T) {
	dir := filepath.Join("..", "..", "deploy", "prometheus")
	rulesPath := filepath.Join(dir, "feederd-rules.yml")
	var rules promRulesFile
	b, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("%s: %v", rulesPath, err)
	}
	var alerts []string
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
		}
	}
	sort.Strings(alerts)
	want := "FeederdAlertReceiverDown FeederdAlertsDropped FeederdConfigReloadFailed FeederdDevicesDown FeederdDown FeederdFeederDark FeederdInfluxBehind " +
		"FeederdInfluxDown FeederdInfluxDropping FeederdInfluxRejecting FeederdPipelineDropping FeederdPollsLate FeederdPollsMissed"
	if got := strings.Join(alerts, " "); got != want {
		t.Errorf("alerts %q, want %q", got, want)
	}

	code, out := promtool(t, nil, "check", "rules", rulesPath)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("SUCCESS: %d rules found", n)) {
		t.Errorf("promtool check rules: exit %d, want 0 and %d rules:\n%s", code, n, out)
	}
	code, out = promtool(t, nil, "check", "config", filepath.Join(dir, "prometheus.example.yml"))
	if code != 0 || !strings.Contains(out, "SUCCESS: 1 rule files found") || !strings.Contains(out, fmt.Sprintf("SUCCESS: %d rules found", n)) {
		t.Errorf("promtool check config: exit %d:\n%s", code, out)
	}
	testsPath := filepath.Join(dir, "feederd-rules.test.yml")
	code, out = promtool(t, nil, "test", "rules", testsPath)
	if code != 0 || !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules: exit %d:\n%s", code, out)
	}

	var tests promTestFile
	if b, err = os.ReadFile(testsPath); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatalf("%s: %v", testsPath, err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.AlertName] = true
			} else {
				quiet[a.AlertName] = true
			}
		}
	}
	for _, a := range alerts {
		if !fires[a] {
			t.Errorf("%s: no unit test in which %s fires", testsPath, a)
		}
		if !quiet[a] {
			t.Errorf("%s: no unit test in which %s stays quiet", testsPath, a)
		}
	}

}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// liveScrape runs a daemon with every optional block (InfluxDB sink,
// alerting to a real Alertmanager, feeders with customers), waits until it
// is ready and has heard its devices, and returns one /metrics scrape.
func liveScrape(t *testing.T) string {
	t.Helper()
	influx := testenv.StartInflux(t)
	am := testenv.StartAlertmanager(t)
	_, brkURL := simDevice(t, "F1-BRK", 1, "sel751a.yaml", map[string]float64{
		"van": 7212, "vbn": 7188, "vcn": 7199, "ia": 120, "pf": 0.97, "freq": 60, "breaker_closed": 1,
	})
	_, recURL := simDevice(t, "F1-REC", 2, "feeder-rtu.yaml", map[string]float64{
		"va": 7200, "vb": 7190, "vc": 7201, "ia": 100, "freq": 60, "breaker_closed": 1,
	})
	d := startDaemon(t, fmt.Sprintf(`
profiles: [%[1]s/feeder-rtu.yaml, %[1]s/sel751a.yaml]
poll: {interval: 200ms, timeout: 150ms}
influx: {url: %[2]s, bucket: %[3]s, flush_interval: 200ms}
alerting: {alertmanagers: [{url: "%[4]s", name: am-a}]}
links:
  - {id: brk, url: %[5]s}
  - {id: rec, url: %[6]s}
devices:
  - {id: F1-BRK, link: brk, unit: 1, profile: sel751a, feeder: F1, nominal_voltage: 7200}
  - {id: F1-REC, link: rec, unit: 2, profile: feeder-rtu, feeder: F1, upstream: F1-BRK, nominal_voltage: 7200}
feeders:
  - id: F1
    sections:
      - {id: F1-S1, fed_by: F1-BRK, customers: 300}
      - {id: F1-S2, fed_by: F1-REC, customers: 250}
`, profilesDir(t), influx.URL, influx.Bucket, am.URL, brkURL, recURL))
	var body string
	eventually(t, 20*time.Second, "ready, with both devices heard and written", func() error {
		if code, b := get(t, d.base+"/readyz"); code != 200 {
			return fmt.Errorf("readyz %d %s", code, b)
		}
		_, body = get(t, d.base+"/metrics")
		for _, want := range []string{`feederd_device_comm_ok{device="F1-REC",feeder="F1"} 1`, `feederd_influx_up 1`, `feederd_alert_receiver_up{receiver="am-a"} 1`} {
			if !strings.Contains(body, want) {
				return fmt.Errorf("no %s yet", want)
			}
		}
		return nil
	})
	return body
}

// TestLiveMetricsPromtool scrapes a running daemon and runs `promtool
// check metrics` on the scrape (names, types, units and help texts follow
// Prometheus's conventions), and requires every feederd_ name in the
// rules to be a family of it: a rule on a metric feederd does not export
// never fires.
func TestLiveMetricsPromtool(t *testing.T) {
	body := liveScrape(t)
	code, out := promtool(t, []byte(body), "check", "metrics")
	if code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("promtool check metrics: exit %d, want 0 and no finding:\n%s", code, out)
	}
	if !strings.Contains(body, "# TYPE feederd_poll_lateness_seconds histogram") {
		t.Fatalf("scrape without feederd's poll histogram:\n%.2000s", body)
	}
	families := map[string]bool{}
	for _, ln := range strings.Split(body, "\n") {
		if f, ok := strings.CutPrefix(ln, "# TYPE "); ok {
			families[strings.Fields(f)[0]] = true
		}
	}
	rulesPath := filepath.Join("..", "..", "deploy", "prometheus", "feederd-rules.yml")
	names := regexp.MustCompile(`\bfeederd_[a-z_]+`).FindAllString(string(mustRead(t, rulesPath)), -1)
	sort.Strings(names)
	names = slices.Compact(names)
	if len(names) != 14 {
		t.Errorf("%d metric names in the rules, want 14: %v", len(names), names)
	}
	for _, name := range names {
		base := name
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			if s, ok := strings.CutSuffix(name, suf); ok && families[s] {
				base = s
			}
		}
		if !families[base] {
			t.Errorf("%s names %s, which a running feederd does not export", rulesPath, name)
		}
	}
}
