package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/sim/devsrv"
	"github.com/feederd/feederd/internal/testenv"
)

// simDevice serves one device of a shipped profile over Modbus TCP.
func simDevice(t *testing.T, id string, unit uint8, profileFile string, values map[string]float64) (*devsrv.Device, string) {
	t.Helper()
	p, err := config.LoadProfile(filepath.Join("..", "..", "configs", "profiles", profileFile))
	if err != nil {
		t.Fatal(err)
	}
	d, err := devsrv.NewDevice(id, unit, p)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range values {
		if err := d.SetValue(k, v); err != nil {
			t.Fatal(err)
		}
	}
	return d, serveTCP(t, d)
}

// serveTCP serves devs behind one Modbus TCP endpoint until the test ends
// and returns its URL.
func serveTCP(t *testing.T, devs ...*devsrv.Device) string {
	t.Helper()
	units, err := devsrv.NewUnits(devs...)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := devsrv.ListenTCP(testenv.FreeAddr(t), units, devsrv.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ep.Serve(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ep.URL
}

// daemon is a feederd started by Run in this process.
type daemon struct {
	base string
	reg  *prometheus.Registry
	stop func() error
	// sim is rtusim's control API, when the test started one.
	sim string
}

// startDaemon runs Run on the config text with the test's options, then
// applies each of mods to them.
func startDaemon(t *testing.T, cfg string, mods ...func(*Options)) *daemon {
	t.Helper()
	path := filepath.Join(t.TempDir(), "feederd.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.ConfigPath = path
	opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts.Registry = prometheus.NewRegistry()
	opts.Listen = "127.0.0.1:0"
	addr := make(chan string, 1)
	opts.OnListen = func(a string) { addr <- a }
	for _, mod := range mods {
		mod(&opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	d := daemon{reg: opts.Registry}
	select {
	case a := <-addr:
		d.base = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("Run returned at start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("Run did not start listening")
	}
	var once sync.Once
	var runErr error
	d.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = fmt.Errorf("Run did not return 30 s after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = d.stop() })
	return &d
}

// testWriter sends the daemon's log to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventually retries f until it returns nil or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func profilesDir(t *testing.T) string {
	abs, err := filepath.Abs(filepath.Join("..", "..", "configs", "profiles"))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// TestDaemon runs the whole daemon against rtusim's devices and a real
// InfluxDB: it becomes ready, serves its metrics, writes the values the
// devices hold with the right tags, and turns a sag into exactly one event.
// TestPollLines (schema_test.go) checks every line of a run.
func TestDaemon(t *testing.T) {
	influx := testenv.StartInflux(t)
	rec, recURL := simDevice(t, "F1-REC", 2, "feeder-rtu.yaml", map[string]float64{
		"va": 7215.5, "vb": 7190.25, "vc": 7201.75, "ia": 212.5, "kw": 2650.125,
		"freq": 60.01, "breaker_closed": 1, "trip_count": 4, "shot_count": 0,
	})
	_, brkURL := simDevice(t, "F1-BRK", 1, "sel751a.yaml", map[string]float64{
		"van": 7212, "vbn": 7188, "vcn": 7199, "ia": -12, "pf": 0.97, "freq": 59.98, "breaker_closed": 1,
	})
	cfg := fmt.Sprintf(`
profiles: [%[1]s/feeder-rtu.yaml, %[1]s/sel751a.yaml]
poll: {interval: 200ms, timeout: 150ms}
influx: {url: %[2]s, bucket: %[3]s, flush_interval: 200ms, batch_size: 100}
links:
  - {id: brk, url: %[4]s}
  - {id: rec, url: %[5]s}
devices:
  - {id: F1-BRK, link: brk, unit: 1, profile: sel751a, feeder: F1, nominal_voltage: 7200, labels: {substation: north}}
  - {id: F1-REC, link: rec, unit: 2, profile: feeder-rtu, feeder: F1, upstream: F1-BRK, nominal_voltage: 7200}
`, profilesDir(t), influx.URL, influx.Bucket, brkURL, recURL)
	d := startDaemon(t, cfg)

	eventually(t, 20*time.Second, "readyz", func() error {
		if code, body := get(t, d.base+"/readyz"); code != 200 {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	_, metrics := get(t, d.base+"/metrics")
	for _, want := range []string{
		`feederd_device_up{device="F1-BRK",link="brk"} 1`,
		`feederd_device_up{device="F1-REC",link="rec"} 1`,
		`feederd_build_info{version="dev"} 1`,
		`feederd_influx_up 1`,
		`go_goroutines `,
		`process_cpu_seconds_total `,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// The values in InfluxDB are the devices' values: exact for integers,
	// exact float32 for float32 points; one line per poll, a field per point
	// named by its role.
	want := map[string]map[string]string{
		"F1-REC": {"voltage_a": "7215.5", "voltage_b": "7190.25", "voltage_c": "7201.75", "current_a": "212.5", "active_power": "2650.125",
			"frequency": "60.01", "breaker_closed": "1", "trip_count": "4", "shot_count": "0", "ok": "1"},
		"F1-BRK": {"voltage_a": "7212", "voltage_b": "7188", "voltage_c": "7199", "current_a": "-12", "power_factor": "0.97",
			"frequency": "59.98", "breaker_closed": "1", "ok": "1"},
	}
	eventually(t, 20*time.Second, "values in InfluxDB", func() error {
		rows := influx.Query(t, `SELECT last(*) FROM feeder_point GROUP BY device`)
		got := map[string]map[string]string{}
		for _, s := range rows {
			if got[s.Tags["device"]] == nil {
				got[s.Tags["device"]] = map[string]string{}
			}
			for i, c := range s.Columns {
				if f, ok := strings.CutPrefix(c, "last_"); ok && s.Values[0][i] != nil {
					got[s.Tags["device"]][f] = fmt.Sprint(s.Values[0][i])
				}
			}
		}
		for dev, fields := range want {
			for f, v := range fields {
				if got[dev][f] != v {
					return fmt.Errorf("%s %s = %q, want %q", dev, f, got[dev][f], v)
				}
			}
		}
		return nil
	})
	tags := influx.Query(t, `SELECT last(voltage_a) FROM feeder_point WHERE device='F1-BRK' GROUP BY *`)
	if len(tags) != 1 {
		t.Fatalf("F1-BRK series: %+v", tags)
	}
	wantTags := map[string]string{"device": "F1-BRK", "feeder": "F1", "substation": "north"}
	if fmt.Sprint(tags[0].Tags) != fmt.Sprint(wantTags) {
		t.Errorf("tags = %v, want %v", tags[0].Tags, wantTags)
	}

	// A sag to 0.7 pu on phase A of the recloser, held for what the daemon
	// read, not for a wall-clock time a busy machine may spend elsewhere:
	// until detection started the sag and five more polls of the recloser
	// (one second of 200 ms polls) read it. Its duration, in sample time,
	// is then between 1.0 and about 2 s: a momentary sag (0.5-3 s).
	if err := rec.SetValue("va", 5040); err != nil {
		t.Fatal(err)
	}
	var polled int
	eventually(t, 20*time.Second, "the sag's start seen by detection", func() error {
		if v := metricValue(t, d.base, `feederd_events_total{kind="sag",stage="start"}`); v != "1" {
			return fmt.Errorf("sag starts = %q", v)
		}
		polled = successfulPolls(t, d.base, "rec")
		return nil
	})
	eventually(t, 20*time.Second, "five polls of the sag after its start", func() error {
		if n := successfulPolls(t, d.base, "rec"); n < polled+5 {
			return fmt.Errorf("%d polls since the start, want 5", n-polled)
		}
		return nil
	})
	if err := rec.SetValue("va", 7215.5); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "one sag event in InfluxDB", func() error {
		rows := influx.Query(t, `SELECT stage, phases, worst_pu, worst_v, category, device FROM feeder_event WHERE kind='sag'`)
		if len(rows) != 1 || len(rows[0].Values) != 1 {
			return fmt.Errorf("sag rows: %+v", rows)
		}
		r := rows[0]
		v := r.Values[0]
		got := fmt.Sprint(v[r.Column("phases")], " ", v[r.Column("stage")], " ", v[r.Column("worst_pu")], " ", v[r.Column("worst_v")], " ", v[r.Column("category")], " ", v[r.Column("device")])
		if got != "A end 0.7 5040 momentary_sag F1-REC" {
			return fmt.Errorf("sag event = %q", got)
		}
		return nil
	})

	if err := d.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// successfulPolls is the link's count of successful polls on /metrics.
func successfulPolls(t *testing.T, base, link string) int {
	t.Helper()
	v := metricValue(t, base, fmt.Sprintf(`feederd_polls_total{link=%q,result="success"}`, link))
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("feederd_polls_total for link %s: %q", link, v)
	}
	return n
}

// TestDaemonWithoutInfluxDB: InfluxDB absent at start. feederd runs and
// polls, /readyz says the sink is not ready, and when InfluxDB appears on
// its address everything queued is delivered.
func TestDaemonWithoutInfluxDB(t *testing.T) {
	addr := testenv.FreeAddr(t)
	_, url := simDevice(t, "F1-REC", 1, "feeder-rtu.yaml", map[string]float64{"va": 7215.5})
	cfg := fmt.Sprintf(`
profiles: [%[1]s/feeder-rtu.yaml]
poll: {interval: 200ms, timeout: 150ms}
influx: {url: http://%[2]s, bucket: feederd/autogen, flush_interval: 200ms, batch_size: 100}
links: [{id: rec, url: %[3]s}]
devices: [{id: F1-REC, link: rec, unit: 1, profile: feeder-rtu, feeder: F1, nominal_voltage: 7200}]
`, profilesDir(t), addr, url)
	d := startDaemon(t, cfg)
	var body string
	eventually(t, 20*time.Second, "poll ready, influx not", func() error {
		var code int
		code, body = get(t, d.base+"/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "poll: ok") || strings.Contains(body, "influx: ok") {
			return fmt.Errorf("%d %q", code, body)
		}
		return nil
	})
	// Five polls wait in the queue for InfluxDB (counted, not slept for).
	eventually(t, 20*time.Second, "five polls while InfluxDB is down", func() error {
		if n := successfulPolls(t, d.base, "rec"); n < 5 {
			return fmt.Errorf("%d successful polls, want 5", n)
		}
		return nil
	})
	downSince := time.Now()
	influx := testenv.StartInfluxOn(t, addr)
	eventually(t, 60*time.Second, "ready after InfluxDB appeared", func() error {
		if code, body := get(t, d.base+"/readyz"); code != 200 {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	eventually(t, 30*time.Second, "samples from the outage delivered", func() error {
		rows := influx.Query(t, fmt.Sprintf(`SELECT count(voltage_a) FROM feeder_point WHERE time <= %d`, downSince.UnixNano()))
		if len(rows) != 1 {
			return fmt.Errorf("rows %+v", rows)
		}
		n, _ := rows[0].Values[0][rows[0].Column("count")].(json.Number).Int64()
		// The five polls counted before InfluxDB started waited in the queue.
		if n < 5 {
			return fmt.Errorf("count = %d, want at least 5", n)
		}
		return nil
	})
	if err := d.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
