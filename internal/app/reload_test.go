package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/pipeline"
	"github.com/feederd/feederd/internal/testenv"
)

// reloadVia asks the daemon for a reload the way SIGHUP does and returns
// its error.
func reloadVia(t *testing.T, hup chan chan error) error {
	t.Helper()
	reply := make(chan error, 1)
	select {
	case hup <- reply:
	case <-time.After(10 * time.Second):
		t.Fatal("the reload stage did not take the request")
	}
	select {
	case err := <-reply:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("no reload result within 30 s")
	}
	return nil
}

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReloadRefused: a file with an unknown key and a file that changes a
// setting only a restart applies are refused with their reasons; the
// daemon goes on polling with the configuration it runs, and the metrics
// say the last reload failed.
func TestReloadRefused(t *testing.T) {
	_, url := simDevice(t, "F1-BRK", 1, "sel751a.yaml", map[string]float64{"van": 7200, "vbn": 7200, "vcn": 7200, "breaker_closed": 1})
	cfg := fmt.Sprintf(`
profiles: [%[1]s/sel751a.yaml]
poll: {interval: 100ms, timeout: 80ms}
links:
  - {id: brk, url: %[2]s}
devices:
  - {id: F1-BRK, link: brk, unit: 1, profile: sel751a, feeder: F1, nominal_voltage: 7200}
`, profilesDir(t), url)
	hup := make(chan chan error)
	var path string
	d := startDaemon(t, cfg, func(o *Options) { o.Reload, path = hup, o.ConfigPath })
	polls := func() float64 {
		return scrape(t, d, `feederd_polls_total{link="brk",result="success"}`)
	}
	eventually(t, 10*time.Second, "polls", func() error {
		if polls() < 1 {
			return fmt.Errorf("no poll yet")
		}
		return nil
	})
	if got := scrape(t, d, "feederd_config_last_reload_successful"); got != 1 {
		t.Fatalf("feederd_config_last_reload_successful = %v at start, want 1", got)
	}
	started := scrape(t, d, "feederd_config_last_reload_success_timestamp_seconds")
	if age := float64(time.Now().UnixNano())/1e9 - started; age < 0 || age > 60 {
		t.Fatalf("feederd_config_last_reload_success_timestamp_seconds is %v s old at start", age)
	}

	// Line 5 has a misspelt key.
	writeConfig(t, path, strings.Replace(cfg, "  - {id: brk, url:", "  - {id: brk, urll:", 1))
	err := reloadVia(t, hup)
	want := "reload refused, nothing was reloaded: " + path + `:5: links[0].urll: unknown key "urll" (did you mean "url"?)`
	if err == nil || err.Error() != want {
		t.Fatalf("reload of a file with a bad key = %v, want %q", err, want)
	}
	if got := scrape(t, d, "feederd_config_last_reload_successful"); got != 0 {
		t.Fatalf("feederd_config_last_reload_successful = %v after a refused reload, want 0", got)
	}

	// A restart-only setting, and a device change with it: nothing applies.
	writeConfig(t, path, strings.Replace(cfg, "poll: {interval: 100ms, timeout: 80ms}", "poll: {interval: 100ms, timeout: 80ms}\npipeline: {drop_policy: newest}", 1)+
		"  - {id: F1-REC, link: brk, unit: 2, profile: sel751a, feeder: F1, upstream: F1-BRK, nominal_voltage: 7200}\n")
	err = reloadVia(t, hup)
	if err == nil || err.Error() != "pipeline.drop_policy changed: restart feederd to apply it; nothing was reloaded" {
		t.Fatalf("reload of a restart-only change = %v", err)
	}
	// Over the API too, with the errors in the answer.
	resp, err := http.Post(d.base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var answer struct{ Error string }
	if err := json.Unmarshal(body, &answer); err != nil || resp.StatusCode != 400 ||
		answer.Error != "pipeline.drop_policy changed: restart feederd to apply it; nothing was reloaded" {
		t.Fatalf("POST /-/reload = %d %s", resp.StatusCode, body)
	}
	if got := scrape(t, d, `feederd_config_reloads_total{result="failure"}`); got != 3 {
		t.Fatalf("feederd_config_reloads_total{result=\"failure\"} = %v, want 3", got)
	}
	if got := scrape(t, d, `feederd_config_reloads_total{result="success"}`); got != 0 {
		t.Fatalf("feederd_config_reloads_total{result=\"success\"} = %v, want 0", got)
	}
	if got := scrape(t, d, "feederd_config_last_reload_success_timestamp_seconds"); got != started {
		t.Fatalf("the last success time moved from %v to %v without a success", started, got)
	}
	// The running configuration polls on, and F1-REC is not polled.
	n := polls()
	eventually(t, 10*time.Second, "polls after the refused reloads", func() error {
		if polls() < n+3 {
			return fmt.Errorf("%v polls, want %v", polls(), n+3)
		}
		return nil
	})
	if _, m := get(t, d.base+"/metrics"); strings.Contains(m, "F1-REC") {
		t.Fatal("F1-REC of a refused file has series")
	}
}

// scrape reads one series from the daemon's /metrics: the line that starts
// with series followed by a space. It fails the test if there is none.
func scrape(t *testing.T, d *daemon, series string) float64 {
	t.Helper()
	_, body := get(t, d.base+"/metrics")
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("%s: %q: %v", series, v, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", series)
	return 0
}

// TestReloadEndToEnd: a running daemon (rtusim devices, a real InfluxDB)
// reloads a file that adds a device (listed first, so every other device
// gets a new index), removes one and changes one, the way SIGHUP asks.
// The new device's points reach InfluxDB, the removed one's link is closed
// and its polls stop, the changed one's link reconnects, the unchanged
// one's connection stays open, and its excursion in progress before the
// reload goes on as the same event (same id, no end line) and ends once,
// after it. Then an invalid file is refused with the running configuration
// kept, and a valid one applies through POST /-/reload.
func TestReloadEndToEnd(t *testing.T) {
	influx := testenv.StartInflux(t)
	nominal := map[string]float64{"va": 7200, "vb": 7200, "vc": 7200, "breaker_closed": 1, "freq": 60}
	brk, brkURL := simDevice(t, "F1-BRK", 1, "sel751a.yaml", map[string]float64{"van": 7200, "vbn": 7200, "vcn": 7200, "breaker_closed": 1, "freq": 60})
	_, rmURL := simDevice(t, "F1-RM", 2, "feeder-rtu.yaml", nominal)
	_, chURL := simDevice(t, "F1-CH", 3, "feeder-rtu.yaml", nominal)
	_, nwURL := simDevice(t, "F1-NEW", 4, "feeder-rtu.yaml", nominal)
	conns := map[string]*testenv.ConnCounter{"brk": testenv.CountConns(t, brkURL), "rm": testenv.CountConns(t, rmURL), "ch": testenv.CountConns(t, chURL), "nw": testenv.CountConns(t, nwURL)}
	head := fmt.Sprintf(`
profiles: [%[1]s/feeder-rtu.yaml, %[1]s/sel751a.yaml]
poll: {interval: 200ms, timeout: 150ms}
detect: {band_persistence: 1s}
influx: {url: %[2]s, bucket: %[3]s, flush_interval: 200ms, batch_size: 100}
`, profilesDir(t), influx.URL, influx.Bucket)
	link := func(id string) string { return fmt.Sprintf("  - {id: %s, url: %s}\n", id, conns[id].URL) }
	const (
		devBRK = "  - {id: F1-BRK, link: brk, unit: 1, profile: sel751a, feeder: F1, nominal_voltage: 7200}\n"
		devRM  = "  - {id: F1-RM, link: rm, unit: 2, profile: feeder-rtu, feeder: F1, upstream: F1-BRK, nominal_voltage: 7200}\n"
		devCH  = "  - {id: F1-CH, link: ch, unit: 3, profile: feeder-rtu, feeder: F1, upstream: F1-BRK, nominal_voltage: 7200%s}\n"
		devNW  = "  - {id: F1-NEW, link: nw, unit: 4, profile: feeder-rtu, feeder: F1, upstream: F1-BRK, nominal_voltage: 7200}\n"
	)
	v1 := head + "links:\n" + link("brk") + link("rm") + link("ch") + "devices:\n" + devBRK + devRM + fmt.Sprintf(devCH, "")
	v2 := head + "links:\n" + link("nw") + link("brk") + link("ch") + "devices:\n" + devNW + devBRK + fmt.Sprintf(devCH, ", interval: 400ms")
	hup := make(chan chan error)
	var path string
	d := startDaemon(t, v1, func(o *Options) { o.Reload, path = hup, o.ConfigPath })

	count := func(dev string) int64 {
		rows := influx.Query(t, fmt.Sprintf(`SELECT count(voltage_a) FROM feeder_point WHERE device='%s'`, dev))
		if len(rows) == 0 {
			return 0
		}
		n, _ := rows[0].Values[0][1].(json.Number).Int64()
		return n
	}
	eventually(t, 20*time.Second, "every device's points in InfluxDB", func() error {
		for _, dev := range []string{"F1-BRK", "F1-RM", "F1-CH"} {
			if count(dev) == 0 {
				return fmt.Errorf("no points of %s", dev)
			}
		}
		return nil
	})
	// F1-BRK's phase A at 0.93 pu: outside Range A for more than 1 s.
	if err := brk.SetValue("van", 6696); err != nil {
		t.Fatal(err)
	}
	type stage struct{ id, stage string }
	bandEvents := func() []stage {
		var out []stage
		for _, s := range influx.Query(t, `SELECT id, stage FROM feeder_event WHERE device='F1-BRK' AND kind='band'`) {
			for _, v := range s.Values {
				out = append(out, stage{fmt.Sprint(v[s.Column("id")]), fmt.Sprint(v[s.Column("stage")])})
			}
		}
		return out
	}
	var started []stage
	eventually(t, 20*time.Second, "F1-BRK's band event started", func() error {
		if started = bandEvents(); len(started) != 1 || started[0].stage != "start" {
			return fmt.Errorf("band events %v", started)
		}
		return nil
	})

	writeConfig(t, path, v2)
	if err := reloadVia(t, hup); err != nil {
		t.Fatalf("reload: %v", err)
	}
	eventually(t, 20*time.Second, "F1-NEW's points in InfluxDB", func() error {
		if count("F1-NEW") == 0 {
			return fmt.Errorf("none yet")
		}
		return nil
	})
	eventually(t, 10*time.Second, "rm's connection closed", func() error {
		if n := conns["rm"].Open.Load(); n != 0 {
			return fmt.Errorf("%d open", n)
		}
		return nil
	})
	// F1-RM's last lines are delivered within a flush; then none come.
	time.Sleep(time.Second)
	rm := count("F1-RM")
	time.Sleep(time.Second)
	if got := count("F1-RM"); got != rm {
		t.Fatalf("F1-RM's points went from %d to %d after it was removed", rm, got)
	}
	_, metrics := get(t, d.base+"/metrics")
	for _, gone := range []string{`link="rm"`, `device="F1-RM"`} {
		if strings.Contains(metrics, gone) {
			t.Errorf("/metrics still has series with %s", gone)
		}
	}
	if a, o := conns["brk"].Accepts.Load(), conns["brk"].Open.Load(); a != 1 || o != 1 {
		t.Fatalf("brk: %d connections, %d open; want its one connection kept", a, o)
	}
	if a, o := conns["ch"].Accepts.Load(), conns["ch"].Open.Load(); a != 2 || o != 1 {
		t.Fatalf("ch: %d connections, %d open; want a new one for F1-CH's new interval", a, o)
	}
	if got := bandEvents(); !slices.Equal(got, started) {
		t.Fatalf("F1-BRK's band events after the reload: %v, want only %v", got, started)
	}
	// Back inside Range A: the event that started before the reload ends.
	// Its end line has the start line's time, so it replaces it in
	// InfluxDB: one row, same id, stage end.
	if err := brk.SetValue("van", 7200); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "F1-BRK's band event ended", func() error {
		want := []stage{{started[0].id, "end"}}
		if got := bandEvents(); !slices.Equal(got, want) {
			return fmt.Errorf("band events %v, want %v", got, want)
		}
		return nil
	})

	// An invalid file changes nothing.
	writeConfig(t, path, strings.Replace(v2, "devices:\n", "devices:\n  - {id: F1-BAD, lnk: brk}\n", 1))
	err := reloadVia(t, hup)
	want := "reload refused, nothing was reloaded: " + path + `:11: devices[0].lnk: unknown key "lnk" (did you mean "link"?)` + "\n" +
		path + ":11: devices[0].unit: required (0..247)\n" + path + ":11: devices[0].profile: required\n" + path + ":11: devices[0].feeder: required"
	if err == nil || err.Error() != want {
		t.Fatalf("reload of an invalid file = %v, want %q", err, want)
	}
	if got := scrape(t, d, "feederd_config_last_reload_successful"); got != 0 {
		t.Fatalf("feederd_config_last_reload_successful = %v, want 0", got)
	}
	n := count("F1-NEW")
	eventually(t, 20*time.Second, "F1-NEW polled on", func() error {
		if count("F1-NEW") <= n {
			return fmt.Errorf("no new points")
		}
		return nil
	})

	// A valid file through the API: F1-CH gets a label, which keeps its link.
	writeConfig(t, path, strings.Replace(v2, "interval: 400ms", "interval: 400ms, labels: {substation: north}", 1))
	resp, err := http.Post(d.base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var sum reloadSummary
	if err := json.Unmarshal(body, &sum); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /-/reload = %d %s", resp.StatusCode, body)
	}
	got := fmt.Sprint(sum.DevicesAdded, sum.DevicesRemoved, sum.DevicesChanged, sum.DevicesUnchanged, sum.LinksStarted, sum.LinksStopped, sum.LinksRestarted, sum.LinksKept)
	if want := "[] [] [F1-CH] 2 [] [] [] [nw brk ch]"; got != want {
		t.Fatalf("summary %s = %s, want %s", body, got, want)
	}
	if got := scrape(t, d, "feederd_config_last_reload_successful"); got != 1 {
		t.Fatalf("feederd_config_last_reload_successful = %v, want 1", got)
	}
	if got := scrape(t, d, `feederd_config_reloads_total{result="success"}`); got != 2 {
		t.Fatalf("successful reloads %v, want 2", got)
	}
	if a := conns["ch"].Accepts.Load(); a != 2 {
		t.Fatalf("ch: %d connections after a label change, want 2", a)
	}
	if err := d.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestEventAlertsFollowReload: events queued before a reload are read with
// the old device table, later ones with the new; an event's end resolves
// the labels its start fired even when its device moved to another index
// and feeder, and a new device given the old index gets alerts of its own
// for an event of the same ID.
func TestEventAlertsFollowReload(t *testing.T) {
	a := &config.Device{ID: "F1-A", Feeder: "F1"}
	m1 := &config.Model{Detect: detect.DefaultParams(), Devices: []*config.Device{a}}
	moved := *a
	moved.Feeder, moved.Index = "F3", 1
	m2 := &config.Model{Detect: detect.DefaultParams(), Devices: []*config.Device{{ID: "F2-N", Feeder: "F2"}, &moved}}
	ch := make(chan detect.Event, 8)
	sink := &recordingSink{}
	c := newEventAlerts(m1, &pipeline.Subscription{C: ch}, sink)
	const id = 1
	ch <- detect.Event{ID: id, Device: 0, Kind: detect.KindCommLost, Stage: detect.StageStart, Start: 1e18}
	done := make(chan error, 1)
	go func() { done <- c.run(nil) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.setModel(ctx, m2); err != nil {
		t.Fatal(err)
	}
	ch <- detect.Event{ID: id, Device: 1, Kind: detect.KindCommLost, Stage: detect.StageEnd, Start: 1e18, End: 2e18}
	ch <- detect.Event{ID: id, Device: 0, Kind: detect.KindCommLost, Stage: detect.StageStart, Start: 3e18}
	ch <- detect.Event{ID: id, Device: 0, Kind: detect.KindCommLost, Stage: detect.StageEnd, Start: 3e18, End: 4e18}
	close(ch)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range sink.set {
		got = append(got, "set "+s.Labels["device"]+" "+s.Labels["feeder"])
	}
	for _, l := range sink.resolved {
		got = append(got, "resolve "+l["device"]+" "+l["feeder"])
	}
	want := []string{"set F1-A F1", "set F2-N F2", "resolve F1-A F1", "resolve F2-N F2"}
	if !slices.Equal(got, want) {
		t.Fatalf("alerts %q, want %q", got, want)
	}
}

// TestReloadDiff: which settings refuse a reload, which sizes are kept,
// and how devices compare.
func TestReloadDiff(t *testing.T) {
	base := func() *config.Model {
		l := &config.Link{ID: "L1"}
		m := &config.Model{
			Influx:   config.Influx{URL: "http://a:8086", QueueSize: 1000},
			Pipeline: config.Pipeline{RingSize: 1 << 14},
			Devices: []*config.Device{
				{ID: "A", Feeder: "F1", Link: l, Unit: 1, Interval: time.Second},
				{Index: 1, ID: "B", Feeder: "F1", Upstream: "A", Link: l, Unit: 2, Interval: time.Second},
			},
		}
		l.Devices = m.Devices
		m.Links = []*config.Link{l}
		return m
	}
	for _, tc := range []struct {
		name   string
		change func(m *config.Model)
		want   []string
	}{
		{"nothing", func(*config.Model) {}, nil},
		{"devices and detection", func(m *config.Model) { m.Devices[0].Interval = 2 * time.Second; m.Detect.BandPersistence = time.Minute }, nil},
		{"influx url and token", func(m *config.Model) { m.Influx.URL = "http://b:8086"; m.Influx.Token = config.NewSecret("x") },
			[]string{"influx.url", "influx.token_env/token_file"}},
		{"no influx", func(m *config.Model) { m.Influx.Disabled = true }, []string{"influx (the block)"}},
		{"http", func(m *config.Model) { m.HTTP.Listen = "127.0.0.1:1"; m.HTTP.TLSCert = "c.pem" }, []string{"http.listen", "http.tls_cert_file"}},
		{"pipeline", func(m *config.Model) { m.Pipeline.Shards = 4; m.Pipeline.DropPolicy = config.DropNewest },
			[]string{"pipeline.shards", "pipeline.drop_policy"}},
		{"alerting", func(m *config.Model) {
			m.Alerting.Alertmanagers = []config.AlertReceiver{{Name: "am", URL: "http://am:9093"}}
		}, []string{"alerting.alertmanagers"}},
		{"sizes are kept, not refused", func(m *config.Model) { m.Pipeline.RingSize = 1 << 15; m.Influx.QueueSize = 2000 }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := base()
			tc.change(next)
			if got := restartChanges(base(), next); !slices.Equal(got, tc.want) {
				t.Fatalf("restartChanges = %q, want %q", got, tc.want)
			}
		})
	}

	next := base()
	next.Pipeline.RingSize, next.Influx.QueueSize = 1<<15, 2000
	kept := keepSizes(base(), next)
	want := []string{"pipeline.ring_size (16384 kept, 32768 at the next restart)", "influx.queue_size (1000 kept, 2000 at the next restart)"}
	if !slices.Equal(kept, want) || next.Pipeline.RingSize != 1<<14 || next.Influx.QueueSize != 1000 {
		t.Fatalf("keepSizes = %q, ring %d, queue %d", kept, next.Pipeline.RingSize, next.Influx.QueueSize)
	}

	// C is new and listed first, A moves to index 1 and gets a label, B
	// only moves, and the profile pointer and link pointer are new.
	next = base()
	c := &config.Device{ID: "C", Feeder: "F1", Upstream: "A", Link: next.Links[0], Unit: 3, Interval: time.Second}
	next.Devices = []*config.Device{c, next.Devices[0], next.Devices[1]}
	for i, d := range next.Devices {
		d.Index = uint32(i)
	}
	next.Devices[1].Labels = map[string]string{"substation": "north"}
	var s reloadSummary
	s.diffDevices(base(), next)
	if got := fmt.Sprint(s.DevicesAdded, s.DevicesRemoved, s.DevicesChanged, s.DevicesUnchanged); got != "[C] [] [A] 1" {
		t.Fatalf("added, removed, changed, unchanged = %s", got)
	}
	s = reloadSummary{}
	s.diffDevices(next, base())
	if got := fmt.Sprint(s.DevicesAdded, s.DevicesRemoved, s.DevicesChanged, s.DevicesUnchanged); got != "[] [C] [A] 1" {
		t.Fatalf("back: added, removed, changed, unchanged = %s", got)
	}
}
