package app

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/testenv"
)

// metricSum adds up every series of a counter or gauge in reg.
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
			if g := m.GetGauge(); g != nil {
				sum += g.GetValue()
			}
		}
	}
	return sum
}

// TestPollsThroughInfluxDBOutage: a simulated device polled every 20 ms
// while InfluxDB is stopped for 150 polls or more, with a memory queue of
// 10 lines: once InfluxDB is back and the spool replayed, InfluxDB holds
// exactly one line per poll made, and nothing was dropped.
func TestPollsThroughInfluxDBOutage(t *testing.T) {
	influx := testenv.StartInflux(t)
	_, url := simDevice(t, "F1-REC", 1, "feeder-rtu.yaml", map[string]float64{"va": 7215.5})
	cfg := fmt.Sprintf(`
profiles: [%[1]s/feeder-rtu.yaml]
poll: {interval: 20ms, timeout: 15ms}
influx: {url: %[2]s, bucket: %[3]s, flush_interval: 20ms, batch_size: 5, queue_size: 10, timeout: 2s}
links: [{id: rec, url: %[4]s}]
devices: [{id: F1-REC, link: rec, unit: 1, profile: feeder-rtu, feeder: F1, nominal_voltage: 7200}]
`, profilesDir(t), influx.URL, influx.Bucket, url)
	dataDir := t.TempDir()
	d := startDaemon(t, cfg, func(o *Options) { o.DataDir = dataDir })
	polls := func() float64 { return metricSum(t, d.reg, "feederd_polls_total") }
	eventually(t, 20*time.Second, "20 polls written", func() error {
		if w := metricSum(t, d.reg, "feederd_influx_points_written_total"); w < 20 {
			return fmt.Errorf("%v written", w)
		}
		return nil
	})

	influx.Stop()
	atStop := polls()
	eventually(t, 60*time.Second, "150 polls during the outage", func() error {
		if n := polls() - atStop; n < 150 {
			return fmt.Errorf("%v polls", n)
		}
		return nil
	})
	if b := metricSum(t, d.reg, "feederd_influx_spool_bytes"); b == 0 {
		t.Error("nothing in the spool during the outage")
	}

	influx.Restart()
	eventually(t, 60*time.Second, "the spool replayed", func() error {
		if b := metricSum(t, d.reg, "feederd_influx_spool_bytes"); b != 0 {
			return fmt.Errorf("%v bytes in the spool", b)
		}
		if r := metricSum(t, d.reg, "feederd_influx_points_replayed_total"); r < 150 {
			return fmt.Errorf("%v replayed", r)
		}
		return nil
	})
	if err := d.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	produced := polls()
	// Lines written are the polls' plus detection's event lines (a few at
	// start); a write whose answer was lost as InfluxDB stopped would be
	// sent again (InfluxDB keeps one point per series and time).
	if w := metricSum(t, d.reg, "feederd_influx_points_written_total"); w < produced || w > produced+5 {
		t.Errorf("%v lines written for %v polls", w, produced)
	}
	for _, name := range []string{"feederd_influx_points_dropped_total", "feederd_influx_points_failed_total"} {
		if v := metricSum(t, d.reg, name); v != 0 {
			t.Errorf("%s = %v, want 0", name, v)
		}
	}
	for q, want := range map[string]float64{
		`SELECT count(seq) FROM feeder_point`:           produced,
		`SELECT count(distinct(seq)) FROM feeder_point`: produced,
	} {
		rows := influx.Query(t, q)
		if len(rows) != 1 {
			t.Fatalf("%s: %+v", q, rows)
		}
		n, _ := rows[0].Values[0][1].(json.Number).Int64()
		if float64(n) != want {
			t.Errorf("%s = %d, want %s (one line per poll)", q, n, strconv.FormatFloat(want, 'f', -1, 64))
		}
	}
}
