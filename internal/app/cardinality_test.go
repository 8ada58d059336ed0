package app

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/sim/devsrv"
)

// The series on /metrics grow by these constants; the README's Metrics
// section states them, and TestMetricCardinality holds the daemon to them.
const (
	// seriesPerDevice: feederd_device_up, and from detection's snapshot
	// feederd_device_voltage_pu and feederd_device_voltage_band (one per
	// phase, three for a three-phase device), feederd_device_energized and
	// feederd_device_comm_ok.
	seriesPerDevice = 9
	// seriesPerLink: feederd_poll_duration_seconds (12 buckets, +Inf, sum,
	// count), feederd_poll_lateness_seconds (14 buckets, +Inf, sum, count),
	// feederd_polls_total (3 results), feederd_poll_missed_total,
	// feederd_link_connected and feederd_reconnects_total.
	seriesPerLink = 38
)

// simGateway serves n feeder-rtu devices, units 1..n, behind one Modbus
// TCP endpoint, all at 1 pu with their breaker closed.
func simGateway(t *testing.T, prefix string, n int) string {
	t.Helper()
	p, err := config.LoadProfile("../../configs/profiles/feeder-rtu.yaml")
	if err != nil {
		t.Fatal(err)
	}
	devs := make([]*devsrv.Device, n)
	for i := range devs {
		d, err := devsrv.NewDevice(fmt.Sprintf("%s%02d", prefix, i+1), uint8(i+1), p)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]float64{"va": 7200, "vb": 7200, "vc": 7200, "freq": 60, "breaker_closed": 1} {
			if err := d.SetValue(k, v); err != nil {
				t.Fatal(err)
			}
		}
		devs[i] = d
	}
	return serveTCP(t, devs...)
}

// seriesByFamily counts the samples of a text exposition by metric family
// (a histogram's _bucket, _sum and _count lines count under its name).
func seriesByFamily(exposition string) map[string]int {
	families := map[string]int{}
	var names []string // the families declared so far, by # TYPE lines
	for line := range strings.Lines(exposition) {
		line = strings.TrimSpace(line)
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			names = append(names, strings.Fields(name)[0])
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		family := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(names, base) {
				family = base
			}
		}
		families[family]++
	}
	return families
}

// fleetSeries runs the whole daemon over links gateways that serve devices
// devices between them, all on two feeders, and returns /metrics' series by
// family once every device has been polled and detection has published its
// state.
func fleetSeries(t *testing.T, links, devices int) map[string]int {
	t.Helper()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "profiles: [%s/feeder-rtu.yaml]\npoll: {interval: 200ms, timeout: 150ms}\nlinks:\n", profilesDir(t))
	perLink := devices / links
	for l := range links {
		fmt.Fprintf(&cfg, "  - {id: gw%d, url: %s}\n", l, simGateway(t, fmt.Sprintf("G%d-", l), perLink))
	}
	cfg.WriteString("devices:\n")
	for i := range devices {
		l, u := i/perLink, i%perLink+1
		feeder, upstream := "F1", "D0000"
		if i%2 == 1 {
			feeder, upstream = "F2", "D0001"
		}
		if i < 2 {
			upstream = ""
		}
		fmt.Fprintf(&cfg, "  - {id: D%04d, link: gw%d, unit: %d, profile: feeder-rtu, feeder: %s, upstream: %q, nominal_voltage: 7200}\n",
			i, l, u, feeder, upstream)
	}
	d := startDaemon(t, cfg.String())
	var families map[string]int
	// Every device polled up, and detection's snapshot (published every
	// second) showing all of them: then the count is steady.
	eventually(t, 30*time.Second, fmt.Sprintf("%d links, %d devices: every device's series", links, devices), func() error {
		_, body := get(t, d.base+"/metrics")
		up := 0
		for line := range strings.Lines(body) {
			if strings.HasPrefix(line, "feederd_device_up{") && strings.HasSuffix(line, "} 1\n") {
				up++
			}
		}
		if up != devices {
			return fmt.Errorf("%d of %d devices up", up, devices)
		}
		for _, want := range []struct {
			prefix string
			n      int
		}{
			{"feederd_device_comm_ok{", devices},
			{"feederd_device_energized{", devices},
			{"feederd_device_voltage_pu{", 3 * devices},
		} {
			if n := strings.Count(body, "\n"+want.prefix); n != want.n {
				return fmt.Errorf("%d %s series, want %d", n, strings.TrimSuffix(want.prefix, "{"), want.n)
			}
		}
		families = seriesByFamily(body)
		return nil
	})
	// A second scrape a snapshot later must agree.
	time.Sleep(1200 * time.Millisecond)
	_, body := get(t, d.base+"/metrics")
	if again := seriesByFamily(body); !maps.Equal(again, families) {
		t.Fatalf("%d links, %d devices: series changed between two scrapes:\n%v\n%v", links, devices, families, again)
	}
	if err := d.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return families
}

// TestMetricCardinality: /metrics grows by seriesPerDevice series per
// device and seriesPerLink per link, whatever the fleet's size. A metric
// labelled by device that is not in seriesPerDevice's list (a per-device
// histogram, say) breaks it, and the failure names the family that grew.
func TestMetricCardinality(t *testing.T) {
	const n = 8
	small := fleetSeries(t, 1, n)   // one gateway, n devices
	large := fleetSeries(t, 1, 2*n) // one gateway, 2n devices
	split := fleetSeries(t, 2, 2*n) // two gateways, n devices each

	total := func(m map[string]int) int {
		s := 0
		for _, v := range m {
			s += v
		}
		return s
	}
	growth := func(from, to map[string]int, per int) (string, int) {
		var b strings.Builder
		for _, f := range slices.Sorted(maps.Keys(merge(from, to))) {
			if d := to[f] - from[f]; d != 0 {
				fmt.Fprintf(&b, "\n  %s: %+d (%+.2f each)", f, d, float64(d)/float64(per))
			}
		}
		return b.String(), total(to) - total(from)
	}
	byFamily, d := growth(small, large, n)
	t.Logf("%d devices: %d series; %d devices: %d series; per device %.2f:%s", n, total(small), 2*n, total(large), float64(d)/n, byFamily)
	if d != n*seriesPerDevice {
		t.Errorf("series per device = %.2f, want %d (update the README's Metrics section and seriesPerDevice only for a metric an operator needs per device); growth by family:%s",
			float64(d)/n, seriesPerDevice, byFamily)
	}
	byFamily, d = growth(large, split, 1)
	t.Logf("a second link: %+d series:%s", d, byFamily)
	if d != seriesPerLink {
		t.Errorf("series per link = %d, want %d; growth by family:%s", d, seriesPerLink, byFamily)
	}
}

func merge(a, b map[string]int) map[string]int {
	m := maps.Clone(a)
	maps.Copy(m, b)
	return m
}
