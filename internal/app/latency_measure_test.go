//go:build measure

package app

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/testenv"
)

// TestOutageToAlertLatency measures, over 20 runs, how long after rtusim
// opens F1's recloser (control API) the FeederOutage alert is listed by a
// real Alertmanager's GET /api/v2/alerts (polled every 5 ms), with feederd
// polling every 500 ms. It asserts nothing about time (BENCHMARKS.md holds
// the figures); it fails only when an alert never comes. Run it with
//
//	go test -tags measure -run TestOutageToAlertLatency -v -count=1 ./internal/app/
func TestOutageToAlertLatency(t *testing.T) {
	const runs = 20
	const interval = 500 * time.Millisecond
	influx := testenv.StartInflux(t)
	am := testenv.StartAlertmanager(t)
	simCfg, ids := outageSimConfig(t)
	urls, control := startSimControl(t, simCfg)
	d := startDaemon(t, outageConfig(t, ids, urls, influx, am.URL, ""))
	eventually(t, 30*time.Second, "readyz", func() error {
		if code, body := get(t, d.base+"/readyz"); code != 200 {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	var lat []time.Duration
	for i := range runs {
		// Spread the opening over the poll interval.
		time.Sleep(interval + time.Duration(i)*interval/runs)
		t0 := time.Now()
		simEvent(t, control, `{"action":"open","target":"F1-REC"}`)
		for {
			if len(am.Alerts(t, `alertname="FeederOutage"`)) > 0 {
				lat = append(lat, time.Since(t0))
				break
			}
			if time.Since(t0) > 15*time.Second {
				t.Fatalf("run %d: no FeederOutage 15 s after the recloser opened", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
		simEvent(t, control, `{"action":"close","target":"F1-REC"}`)
		eventually(t, 15*time.Second, "FeederOutage resolved", func() error {
			if n := len(am.Alerts(t, `alertname="FeederOutage"`)); n != 0 {
				return fmt.Errorf("%d active", n)
			}
			return nil
		})
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	// Nearest rank: p50 is the 10th of 20, p99 the 20th.
	rank := func(p float64) time.Duration {
		k := int(p*float64(len(sorted))+0.999999) - 1
		return sorted[max(k, 0)]
	}
	t.Logf("outage-to-alert latency over %d runs, poll interval %v: p50 %v, p99 %v, min %v, max %v",
		runs, interval, rank(0.50).Round(time.Millisecond), rank(0.99).Round(time.Millisecond),
		sorted[0].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond))
	t.Logf("runs (ms): %v", func() []int64 {
		var ms []int64
		for _, l := range lat {
			ms = append(ms, l.Milliseconds())
		}
		return ms
	}())
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
}
