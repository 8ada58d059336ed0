package app

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/testenv"
)

// TestHAPairWritesOnce runs two daemons with the same configuration and
// poll.slot_time on the same devices and the same InfluxDB, as an HA pair
// would: every poll line is stamped on its schedule slot, a Unix-time
// multiple of the interval, so the two replicas write the same series and
// times and InfluxDB holds one point per slot, not one per replica's poll.
func TestHAPairWritesOnce(t *testing.T) {
	influx := testenv.StartInflux(t)
	vals := map[string]float64{"va": 7215.5, "vb": 7190.25, "vc": 7201.75, "breaker_closed": 1}
	_, aURL := simDevice(t, "F1-REC", 1, "feeder-rtu.yaml", vals)
	_, bURL := simDevice(t, "F2-REC", 1, "feeder-rtu.yaml", vals)
	cfg := fmt.Sprintf(`
profiles: [%[1]s/feeder-rtu.yaml]
poll: {interval: 100ms, timeout: 80ms, slot_time: true}
influx: {url: %[2]s, bucket: %[3]s, flush_interval: 100ms, batch_size: 100}
links:
  - {id: F1-REC, url: %[4]s}
  - {id: F2-REC, url: %[5]s}
devices:
  - {id: F1-REC, link: F1-REC, unit: 1, profile: feeder-rtu, feeder: F1, nominal_voltage: 7200}
  - {id: F2-REC, link: F2-REC, unit: 1, profile: feeder-rtu, feeder: F2, nominal_voltage: 7200}
`, profilesDir(t), influx.URL, influx.Bucket, aURL, bURL)
	devices := []string{"F1-REC", "F2-REC"}
	a := startDaemon(t, cfg)
	time.Sleep(370 * time.Millisecond) // B starts mid-slot, at another phase of the clock
	b := startDaemon(t, cfg)
	polled := func(d *daemon) map[string]float64 {
		return counters(t, d.reg, "feederd_polls_total", "device", "link")
	}
	eventually(t, 30*time.Second, "20 polls of each device by each replica", func() error {
		for _, d := range []*daemon{a, b} {
			for _, dev := range devices {
				if n := polled(d)[dev]; n < 20 {
					return fmt.Errorf("%s: %v polls", dev, n)
				}
			}
		}
		return nil
	})
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	pa, pb := polled(a), polled(b)
	for _, dev := range devices {
		rows := influx.Query(t, fmt.Sprintf(`SELECT ok FROM feeder_point WHERE device = '%s'`, dev))
		if len(rows) != 1 {
			t.Fatalf("%s: %d series, want 1", dev, len(rows))
		}
		n := float64(len(rows[0].Values))
		// A polled from its start to its stop, B within that window: every
		// slot B polled, A polled too, so the points are A's polls (give or
		// take the slot either was stopping in). Without slot times they
		// would be A's plus B's.
		if n < pa[dev]-1 || n > pa[dev]+1 {
			t.Errorf("%s: %v points in InfluxDB; replica A polled %v times, B %v: want A's count, each slot once",
				dev, n, pa[dev], pb[dev])
		}
		for _, v := range rows[0].Values {
			ns, err := v[0].(json.Number).Int64() // testenv queries with epoch=ns
			if err != nil {
				t.Fatalf("%s: time %v: %v", dev, v[0], err)
			}
			ts := time.Unix(0, ns).UTC()
			// One device per link: its offset is 0, its slots are multiples
			// of 100 ms of Unix time.
			if ts.UnixNano()%int64(100*time.Millisecond) != 0 {
				t.Errorf("%s: point at %s is not on a 100 ms slot", dev, ts.Format(time.RFC3339Nano))
				break
			}
			if ok, _ := v[1].(json.Number).Int64(); ok != 1 {
				t.Errorf("%s: point at %s has ok=%v", dev, ts.Format(time.RFC3339Nano), v[1])
			}
		}
		t.Logf("%s: replica A %v polls, B %v polls, InfluxDB %v points", dev, pa[dev], pb[dev], n)
	}
}
