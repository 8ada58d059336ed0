package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/sim"
	"github.com/feederd/feederd/internal/testenv"
)

func freePort(t *testing.T) string {
	t.Helper()
	_, p, err := net.SplitHostPort(testenv.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startSim runs rtusim's Run on a config text with a scenario and returns
// the URL of each device.
func startSim(t *testing.T, cfgText, scenarioText string) map[string]string {
	t.Helper()
	urls, _ := runSim(t, cfgText, scenarioText, false)
	return urls
}

// runSim runs rtusim on a config text, with a scenario when scenarioText is
// not empty and its control API on a free port when control is set, until
// the test ends. It returns once every device listens (and the API, which
// starts last), with each device's URL and the API's base URL.
func runSim(t *testing.T, cfgText, scenarioText string, control bool) (map[string]string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sim.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := sim.LoadConfig(path, config.LoadProfile)
	if err != nil {
		t.Fatal(err)
	}
	opts := sim.DefaultOptions()
	opts.Config = cfg
	opts.Logger = slog.New(slog.DiscardHandler)
	if scenarioText != "" {
		if opts.Scenario, err = sim.ParseScenario("scenario.yaml", []byte(scenarioText)); err != nil {
			t.Fatal(err)
		}
	}
	if control {
		opts.HTTPListen = "127.0.0.1:0"
	}
	var mu sync.Mutex
	urls := map[string]string{}
	api := ""
	ready := make(chan struct{})
	opts.OnListen = func(l sim.Listening) {
		mu.Lock()
		defer mu.Unlock()
		if l.Device != nil {
			urls[l.Device.ID] = l.URL
		} else {
			api = l.URL
		}
		if len(urls) == len(cfg.Devices) && (!control || api != "") {
			select {
			case <-ready:
			default:
				close(ready)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sim.Run: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("sim.Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("rtusim did not bind its devices and control API")
	}
	mu.Lock()
	defer mu.Unlock()
	return urls, api
}

// TestSagScenarioEndToEnd: rtusim plays a sag scenario (0.7 pu for 4 s,
// an IEEE 1159 temporary sag) on a feeder's phase B; feederd polls the feeder's three devices and writes to a real
// InfluxDB, where each device has exactly one sag event, on phase B, with
// the scenario's depth at the substation.
func TestSagScenarioEndToEnd(t *testing.T) {
	influx := testenv.StartInflux(t)
	prof := profilesDir(t)
	simCfg := fmt.Sprintf(`
seed: 1
tick: 100ms
listen: 127.0.0.1
profiles: [%[1]s/sel751a.yaml, %[1]s/feeder-rtu.yaml, %[1]s/pm5100.yaml]
devices:
  - {id: F1-BRK, profile: sel751a, unit: 1, port: %[2]s, nominal_voltage: 7200}
  - {id: F1-REC, profile: feeder-rtu, unit: 1, port: %[3]s, nominal_voltage: 7200}
  - {id: F1-MTR, profile: pm5100, unit: 1, port: %[4]s, nominal_voltage: 120}
feeders:
  - id: F1
    nominal_voltage: 7200
    nodes:
      - {id: F1-BRK, kind: breaker, device: F1-BRK}
      - {id: F1-S1, kind: section, upstream: F1-BRK, section: {load_kw: 800, customers: 300}}
      - {id: F1-REC, kind: recloser, upstream: F1-S1, device: F1-REC}
      - {id: F1-S2, kind: section, upstream: F1-REC, section: {load_kw: 600, customers: 250}}
      - {id: F1-MTR, kind: meter, upstream: F1-S2, device: F1-MTR}
`, prof, freePort(t), freePort(t), freePort(t))
	scenario := `
seed: 1
start: 2025-01-15T12:00:00Z
events:
  - {at: 3s, action: sag, target: F1, magnitude: 0.7, duration: 4s, phases: B}
`
	urls := startSim(t, simCfg, scenario)
	cfg := fmt.Sprintf(`
profiles: [%[1]s/sel751a.yaml, %[1]s/feeder-rtu.yaml, %[1]s/pm5100.yaml]
poll: {interval: 100ms, timeout: 90ms}
influx: {url: %[2]s, bucket: %[3]s, flush_interval: 200ms, batch_size: 200}
links:
  - {id: brk, url: %[4]s}
  - {id: rec, url: %[5]s}
  - {id: mtr, url: %[6]s}
devices:
  - {id: F1-BRK, link: brk, unit: 1, profile: sel751a, feeder: F1, nominal_voltage: 7200}
  - {id: F1-REC, link: rec, unit: 1, profile: feeder-rtu, feeder: F1, upstream: F1-BRK, nominal_voltage: 7200}
  - {id: F1-MTR, link: mtr, unit: 1, profile: pm5100, feeder: F1, upstream: F1-REC, nominal_voltage: 120}
`, prof, influx.URL, influx.Bucket, urls["F1-BRK"], urls["F1-REC"], urls["F1-MTR"])
	d := startDaemon(t, cfg)

	eventually(t, 30*time.Second, "one ended sag per device in InfluxDB", func() error {
		rows := influx.Query(t, `SELECT stage, phases, worst_pu, category FROM feeder_event WHERE kind='sag' GROUP BY device`)
		got := map[string]string{}
		for _, r := range rows {
			if len(r.Values) != 1 {
				return fmt.Errorf("%s has %d sag events, want 1: %v", r.Tags["device"], len(r.Values), r.Values)
			}
			v := r.Values[0]
			if v[r.Column("stage")] != "end" {
				return fmt.Errorf("%s: sag not ended yet", r.Tags["device"])
			}
			got[r.Tags["device"]] = fmt.Sprintf("%v %v %v", v[r.Column("phases")], v[r.Column("worst_pu")], v[r.Column("category")])
		}
		if len(got) != 3 {
			return fmt.Errorf("sag events for %d devices, want 3: %v", len(got), got)
		}
		// The breaker reads the substation bus: exactly 0.7 pu. Further out
		// the feeder's voltage drop adds a little.
		if got["F1-BRK"] != "B 0.7 temporary_sag" {
			return fmt.Errorf("F1-BRK sag = %q, want %q", got["F1-BRK"], "B 0.7 temporary_sag")
		}
		for _, dev := range []string{"F1-REC", "F1-MTR"} {
			var ph, cat string
			var worst float64
			if _, err := fmt.Sscanf(got[dev], "%s %g %s", &ph, &worst, &cat); err != nil {
				return fmt.Errorf("%s: %q: %v", dev, got[dev], err)
			}
			if ph != "B" || worst > 0.7 || worst < 0.65 || cat != "temporary_sag" {
				return fmt.Errorf("%s sag = %q, want phase B, worst in 0.65..0.7, temporary_sag", dev, got[dev])
			}
		}
		return nil
	})
	if err := d.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
