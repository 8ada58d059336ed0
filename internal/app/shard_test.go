package app

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/config"
)

// TestShardsPollEveryDeviceOnce runs two daemons, -shard 0/2 and 1/2, on one
// configuration over one rtusim fleet: eight devices on links of their own
// (feeders F1..F4), a gateway shared by feeders G1 and G2, and a gateway
// of feeder H1. Between them the two instances poll every device, none
// twice; each feeder, and each link, is in one instance only; G1 and G2
// stay together; each says which shard it runs.
func TestShardsPollEveryDeviceOnce(t *testing.T) {
	prof := profilesDir(t)
	var sim strings.Builder
	fmt.Fprintf(&sim, `seed: 1
tick: 100ms
listen: 127.0.0.1
profiles: [%s/feeder-rtu.yaml]
devices:
`, prof)
	for i := range 8 {
		fmt.Fprintf(&sim, "  - {id: F%d-%d, profile: feeder-rtu, unit: 1, port: %s, nominal_voltage: 7200}\n", i/2+1, i%2, freePort(t))
	}
	fmt.Fprintf(&sim, `fleets:
  - {id_prefix: GA-, count: 6, profile: feeder-rtu, nominal_voltage: 7200, base_port: %s, units_per_port: 6, transport: tcp}
  - {id_prefix: GB-, count: 4, profile: feeder-rtu, nominal_voltage: 7200, base_port: %s, units_per_port: 4, transport: tcp}
`, freePort(t), freePort(t))
	// startSim wants a scenario: one that does nothing within the test.
	urls := startSim(t, sim.String(), "seed: 1\nevents: [{at: 1h, action: comms_restore, target: F1-0}]\n")

	// Devices by feeder, and the feederd configuration over them.
	feeders := map[string][]string{}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "profiles: [%s/feeder-rtu.yaml]\npoll: {interval: 200ms, timeout: 150ms}\nlinks:\n", prof)
	linkOf := map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(urls)) {
		link := id
		if gw, _, ok := strings.Cut(id, "-"); ok && strings.HasPrefix(gw, "G") {
			link = gw
		}
		if _, seen := slices.BinarySearch(slices.Sorted(maps.Values(linkOf)), link); !seen {
			fmt.Fprintf(&cfg, "  - {id: %s, url: %s}\n", link, urls[id])
		}
		linkOf[id] = link
	}
	cfg.WriteString("devices:\n")
	for _, id := range slices.Sorted(maps.Keys(urls)) {
		var feeder string
		unit := 1
		switch {
		case strings.HasPrefix(id, "GA-"): // units 1..3 feeder G1, 4..6 G2
			fmt.Sscanf(id, "GA-%d", &unit)
			feeder = fmt.Sprintf("G%d", (unit-1)/3+1)
		case strings.HasPrefix(id, "GB-"):
			fmt.Sscanf(id, "GB-%d", &unit)
			feeder = "H1"
		default:
			feeder, _, _ = strings.Cut(id, "-")
		}
		upstream := ""
		if n := len(feeders[feeder]); n > 0 {
			upstream = feeders[feeder][0]
		}
		feeders[feeder] = append(feeders[feeder], id)
		fmt.Fprintf(&cfg, "  - {id: %s, link: %s, unit: %d, profile: feeder-rtu, feeder: %s, upstream: %q, nominal_voltage: 7200}\n",
			id, linkOf[id], unit, feeder, upstream)
	}
	t.Logf("feeders: %v", feeders)

	type instance struct {
		devices, links map[string]bool
	}
	var got [2]instance
	for i := range got {
		d := startDaemon(t, cfg.String(), func(o *Options) { o.Shard = config.Shard{Index: i, Count: 2} })
		// feederd_device_up has a series for each device of the instance's
		// model from the start, 1 once the device has answered.
		var body string
		eventually(t, 20*time.Second, fmt.Sprintf("shard %d/2: all its devices up", i), func() error {
			_, body = get(t, d.base+"/metrics")
			all, up := labelValues(body, "feederd_device_up", "device", ""), labelValues(body, "feederd_device_up", "device", " 1")
			if len(up) == 0 || len(up) != len(all) {
				return fmt.Errorf("%d of %d devices up", len(up), len(all))
			}
			return nil
		})
		if want := fmt.Sprintf(`feederd_shard_info{count="2",index="%d"} 1`, i); !strings.Contains(body, want) {
			t.Errorf("shard %d/2: /metrics lacks %q", i, want)
		}
		got[i] = instance{devices: labelValues(body, "feederd_device_up", "device", " 1"), links: labelValues(body, "feederd_link_connected", "link", "")}
		t.Logf("shard %d/2 polls %d devices on links %v", i, len(got[i].devices), slices.Sorted(maps.Keys(got[i].links)))
		if len(got[i].devices) == 0 {
			t.Errorf("shard %d/2 polls no device; the fleet was chosen so that both have some", i)
		}
	}

	for id := range urls {
		switch a, b := got[0].devices[id], got[1].devices[id]; {
		case a && b:
			t.Errorf("%s is polled by both instances", id)
		case !a && !b:
			t.Errorf("%s is polled by neither instance (or is not up)", id)
		}
	}
	for l := range got[0].links {
		if got[1].links[l] {
			t.Errorf("link %s is opened by both instances", l)
		}
	}
	for f, ids := range feeders {
		in := got[0].devices[ids[0]]
		for _, id := range ids {
			if got[0].devices[id] != in {
				t.Errorf("feeder %s is split between the instances", f)
				break
			}
		}
	}
	if got[0].devices[feeders["G1"][0]] != got[0].devices[feeders["G2"][0]] {
		t.Errorf("G1 and G2 share a gateway but are in different instances")
	}
}

// labelValues returns the values of label in the series of metric on a
// /metrics page whose line ends with suffix.
func labelValues(body, metric, label, suffix string) map[string]bool {
	out := map[string]bool{}
	for line := range strings.Lines(body) {
		line = strings.TrimSuffix(line, "\n")
		rest, ok := strings.CutPrefix(line, metric+"{")
		if !ok || !strings.HasSuffix(line, suffix) {
			continue
		}
		_, v, ok := strings.Cut(rest, label+`="`)
		if !ok {
			continue
		}
		v, _, _ = strings.Cut(v, `"`)
		out[v] = true
	}
	return out
}

// TestEmptyShard: an instance whose shard owns no feeder (more instances
// than feeders) runs, polls nothing, opens no link and is ready.
func TestEmptyShard(t *testing.T) {
	_, url := simDevice(t, "F1-REC", 1, "feeder-rtu.yaml", map[string]float64{"va": 7200})
	// F1 is shard 0 of 2 (config's TestModelShard pins it).
	cfg := fmt.Sprintf(`
profiles: [%[1]s/feeder-rtu.yaml]
poll: {interval: 200ms, timeout: 150ms}
links: [{id: rec, url: %[2]s}]
devices: [{id: F1-REC, link: rec, unit: 1, profile: feeder-rtu, feeder: F1, nominal_voltage: 7200}]
`, profilesDir(t), url)
	d := startDaemon(t, cfg, func(o *Options) { o.Shard = config.Shard{Index: 1, Count: 2} })
	eventually(t, 10*time.Second, "ready", func() error {
		if code, body := get(t, d.base+"/readyz"); code != 200 {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	_, body := get(t, d.base+"/metrics")
	if !strings.Contains(body, `feederd_shard_info{count="2",index="1"} 1`) {
		t.Errorf("/metrics lacks feederd_shard_info 1/2")
	}
	for _, absent := range []string{"feederd_device_up{", "feederd_link_connected{"} {
		if strings.Contains(body, absent) {
			t.Errorf("/metrics has %s series in an empty shard", absent)
		}
	}
	if err := d.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
