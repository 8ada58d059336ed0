package sim

import (
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sim/devsrv"
	"github.com/feederd/feederd/internal/sim/physics"
	"github.com/feederd/feederd/internal/sim/simtest"
)

func TestLoadConfigGood(t *testing.T) {
	var loaded []string
	load := func(path string) (*profile.Profile, error) {
		loaded = append(loaded, path)
		return simtest.Profiles(path)
	}
	cfg, err := LoadConfig("testdata/config/good.yaml", load)
	if err != nil {
		t.Fatal(err)
	}
	wantLoaded := []string{"testdata/config/profiles/sel751a.yaml", "testdata/config/profiles/pm5100.yaml", "testdata/config/profiles/feeder-rtu.yaml"}
	if !slices.Equal(loaded, wantLoaded) {
		t.Fatalf("loaded %v, want %v", loaded, wantLoaded)
	}
	if cfg.Seed != 42 || cfg.Tick != 500*time.Millisecond || cfg.HTTP != "127.0.0.1:0" {
		t.Fatalf("seed %d tick %s http %s", cfg.Seed, cfg.Tick, cfg.HTTP)
	}

	type dev struct {
		id, profile string
		unit        uint8
		endpoint    string
		nominal     float64
		current     float64
	}
	var devs []dev
	for _, d := range cfg.Devices {
		devs = append(devs, dev{d.ID, d.Profile.Name, d.Unit, cfg.Endpoints[d.Endpoint].ID, d.NominalVoltage, d.Current})
	}
	wantDevs := []dev{
		{"F101-BRK", "sel751a", 1, "F101-BRK", 7200, 0},
		{"F101-REC", "feeder-rtu", 2, "F101-REC", 7200, 150},
		{"GW-MTR", "pm5100", 7, "gw1", 120, 0},
		{"GW-BRK", "sel751a", 8, "gw1", 7200, 0},
		{"BUS-REC", "feeder-rtu", 3, "bus1", 7200, 0},
		{"SIM-001", "feeder-rtu", 1, "SIM-001", 7200, 0},
		{"SIM-002", "feeder-rtu", 1, "SIM-002", 7200, 0},
		{"SIM-003", "feeder-rtu", 1, "SIM-003", 7200, 0},
		{"GW-001", "pm5100", 1, "GW-gw1", 120, 0},
		{"GW-002", "pm5100", 2, "GW-gw1", 120, 0},
		{"GW-003", "pm5100", 1, "GW-gw2", 120, 0},
		{"GW-004", "pm5100", 2, "GW-gw2", 120, 0},
		{"GW-005", "pm5100", 1, "GW-gw3", 120, 0},
	}
	if !reflect.DeepEqual(devs, wantDevs) {
		t.Fatalf("devices\n%v\nwant\n%v", devs, wantDevs)
	}
	if v := cfg.Devices[0].Values; !reflect.DeepEqual(v, map[string]float64{"van": 7210, "pf": 0.95}) {
		t.Fatalf("F101-BRK values %v", v)
	}
	if s := cfg.Devices[1].Strings; !reflect.DeepEqual(s, map[string]string{"model": "RC10"}) {
		t.Fatalf("F101-REC strings %v", s)
	}

	type ep struct {
		id      string
		tr      devsrv.Transport
		addr    string
		devs    []int
		gateway bool
	}
	var eps []ep
	for _, e := range cfg.Endpoints {
		eps = append(eps, ep{e.ID, e.Transport, e.Addr, e.Devices, e.Gateway})
	}
	wantEps := []ep{
		{"gw1", devsrv.TransportTCP, "127.0.0.1:15100", []int{2, 3}, true},
		{"bus1", devsrv.TransportRTU, "", []int{4}, false},
		{"F101-BRK", devsrv.TransportTCP, "127.0.0.1:15020", []int{0}, false},
		{"F101-REC", devsrv.TransportRTUOverTCP, "127.0.0.1:15021", []int{1}, false},
		{"SIM-001", devsrv.TransportTCP, "127.0.0.1:16000", []int{5}, false},
		{"SIM-002", devsrv.TransportTCP, "127.0.0.1:16001", []int{6}, false},
		{"SIM-003", devsrv.TransportTCP, "127.0.0.1:16002", []int{7}, false},
		{"GW-gw1", devsrv.TransportRTUOverTCP, "127.0.0.1:16100", []int{8, 9}, true},
		{"GW-gw2", devsrv.TransportRTUOverTCP, "127.0.0.1:16101", []int{10, 11}, true},
		{"GW-gw3", devsrv.TransportRTUOverTCP, "127.0.0.1:16102", []int{12}, true},
	}
	if !reflect.DeepEqual(eps, wantEps) {
		t.Fatalf("endpoints\n%v\nwant\n%v", eps, wantEps)
	}
	wantSerial := devsrv.SerialConfig{Path: "/dev/ttyS9", Baud: 9600, DataBits: 8, Parity: "E", StopBits: 1}
	if got := cfg.Endpoints[1].Serial; got != wantSerial {
		t.Fatalf("serial %+v, want %+v", got, wantSerial)
	}
}

// TestDemoConfig pins the demo fleet that configs/demo.yaml (feederd's side)
// is written against, and checks that feederd's topology of that file is
// the tree rtusim simulates, device for device.
func TestDemoConfig(t *testing.T) {
	var loaded []string
	load := func(path string) (*profile.Profile, error) {
		loaded = append(loaded, filepath.ToSlash(path))
		return simtest.Profiles(path)
	}
	cfg, err := LoadConfig("../../configs/sim/demo.yaml", load)
	if err != nil {
		t.Fatal(err)
	}
	wantLoaded := []string{"../../configs/profiles/sel751a.yaml", "../../configs/profiles/feeder-rtu.yaml", "../../configs/profiles/pm5100.yaml"}
	if !slices.Equal(loaded, wantLoaded) {
		t.Fatalf("loaded %v, want %v", loaded, wantLoaded)
	}
	var got []string
	for _, d := range cfg.Devices {
		e := cfg.Endpoints[d.Endpoint]
		got = append(got, strings.Join([]string{d.ID, d.Profile.Name, string(e.Transport), e.Addr, itoa(int(d.Unit)), ftoa(d.NominalVoltage), ftoa(d.Current)}, " "))
	}
	want := []string{
		"F101-BRK sel751a tcp 127.0.0.1:5020 1 7200 0",
		"F101-REC feeder-rtu tcp 127.0.0.1:5021 2 7200 0",
		"F101-MTR pm5100 tcp 127.0.0.1:5022 3 120 0",
		"F102-BRK sel751a tcp 127.0.0.1:5023 1 7200 0",
		"F102-REC feeder-rtu tcp 127.0.0.1:5024 2 7200 0",
		"F102-MTR pm5100 tcp 127.0.0.1:5025 3 120 0",
		"TIE-12 feeder-rtu tcp 127.0.0.1:5026 1 7200 0",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("demo fleet\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Every device serves a node of the same ID, on the feeder (and below
	// the upstream device) that configs/demo.yaml gives it.
	var nodes []string
	for _, f := range cfg.Feeders {
		for i, n := range f.Topology.Nodes {
			if di := f.Nodes[i].Device; di >= 0 {
				up := ""
				for p := n.Parent; p >= 0; p = f.Topology.Nodes[p].Parent {
					if f.Nodes[p].Device >= 0 {
						up = f.Topology.Nodes[p].ID
						break
					}
				}
				nodes = append(nodes, cfg.Devices[di].ID+" "+f.Topology.ID+" "+string(n.Kind)+" "+n.ID+" up:"+up)
			}
		}
	}
	wantNodes := []string{
		"F101-BRK F101 breaker F101-BRK up:",
		"F101-REC F101 recloser F101-REC up:F101-BRK",
		"F101-MTR F101 meter F101-MTR up:F101-REC",
		"F102-BRK F102 breaker F102-BRK up:",
		"F102-REC F102 recloser F102-REC up:F102-BRK",
		"F102-MTR F102 meter F102-MTR up:F102-REC",
		"TIE-12 F102 switch TIE-12 up:F102-REC",
	}
	if !slices.Equal(nodes, wantNodes) {
		t.Fatalf("demo nodes\n%s\nwant\n%s", strings.Join(nodes, "\n"), strings.Join(wantNodes, "\n"))
	}
	// And feederd's topology of configs/demo.yaml is that tree.
	m, err := config.Load("../../configs/demo.yaml", config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var feederd []string
	for _, f := range m.Topology.Feeders {
		for _, n := range f.Nodes {
			up := ""
			if n.Parent >= 0 {
				up = f.Nodes[n.Parent].ID
			}
			feederd = append(feederd, n.ID+" "+f.ID+" "+string(n.Kind)+" "+n.ID+" up:"+up)
		}
	}
	if !slices.Equal(feederd, nodes) {
		t.Fatalf("feederd's demo topology\n%s\nrtusim's\n%s", strings.Join(feederd, "\n"), strings.Join(nodes, "\n"))
	}
	if cfg.HTTP != "127.0.0.1:9201" || cfg.Seed != 1 || cfg.Tick != time.Second {
		t.Fatalf("http %s seed %d tick %s", cfg.HTTP, cfg.Seed, cfg.Tick)
	}
}

func TestLoadConfigBad(t *testing.T) {
	tests := map[string]string{
		"bad-duplicate-id":   `bad-duplicate-id.yaml:4: devices[1].id: device A is already defined at devices[0]`,
		"bad-duplicate-port": `bad-duplicate-port.yaml:4: devices[1].port: port 5020 is already used by devices[0] (A)`,
		"bad-duplicate-unit": `bad-duplicate-unit.yaml:5: devices[1].unit: unit 4 on gw1 is already device A`,
		"bad-empty":          `bad-empty.yaml:1: the file is empty`,
		"bad-feeder-device": `bad-feeder-device.yaml:10: feeders[0].nodes[1].device: device A-BRK already serves feeders[0].nodes[0]
bad-feeder-device.yaml:11: feeders[0].nodes[2].device: no device "A-METER"
bad-feeder-device.yaml:12: feeders[0].nodes[3].device: device A-MTR sets current 40: on a feeder its current comes from the load`,
		"bad-feeder-ids": `bad-feeder-ids.yaml:9: feeders[0].nodes[0].id: node A-BRK has the ID of the device at devices[0] but serves "B-BRK": a node with a device's ID serves that device
bad-feeder-ids.yaml:11: feeders[1].id: feeder B has the ID of node feeders[0].nodes[1]: scenario targets would be ambiguous
bad-feeder-ids.yaml:15: feeders[1].nodes[1].id: duplicate node id "B" (first at feeders[0].nodes[1].id)
bad-feeder-ids.yaml:16: feeders[2].id: feeder A is defined twice
bad-feeder-ids.yaml:20: feeders[3].id: feeder A-BRK has the ID of node feeders[0].nodes[0]: scenario targets would be ambiguous`,
		"bad-feeder-nominal": `bad-feeder-nominal.yaml:5: feeders[0]: set exactly one of nominal_voltage (line-to-neutral volts) and source_kv (line-to-line kV)
bad-feeder-nominal.yaml:11: feeders[1].source_kv: -1 is not positive`,
		"bad-feeder-options": `bad-feeder-options.yaml:9: feeders[0].nodes[1].normally_open: a section cannot open: only breakers, reclosers, sectionalizers and switches
bad-feeder-options.yaml:10: feeders[0].nodes[2].reclose: only breakers and reclosers reclose, not a meter
bad-feeder-options.yaml:11: feeders[0].nodes[3].counts: only sectionalizers count interruptions, not a recloser
bad-feeder-options.yaml:12: feeders[0].nodes[4].counts: 9 is outside 1..8
bad-feeder-options.yaml:13: feeders[0].nodes[5].tie: a tie is a switch, not a sensor
bad-feeder-options.yaml:14: feeders[0].nodes[6].tie: no node "A-NOPE"
bad-feeder-options.yaml:15: feeders[0].nodes[7].tie: a switch cannot tie to itself
bad-feeder-options.yaml:16: feeders[0].nodes[8].tie: node "A-W" is on this feeder: a tie comes from another feeder`,
		"bad-feeder-params": `bad-feeder-params.yaml:7: feeders[0].source_pu: 2 is outside 0.5..1.5
bad-feeder-params.yaml:8: feeders[0].power_factor: 1.2 is outside (0, 1]
bad-feeder-params.yaml:9: feeders[0].frequency: -50 Hz is outside (0, 1000]
bad-feeder-params.yaml:10: feeders[0].drop_per_mw: -0.1 pu per MW is outside 0..0.5
bad-feeder-params.yaml:11: feeders[0].trip_delay: 2m0s is outside 0s..1m
bad-feeder-params.yaml:13: feeders[0].reclose.intervals: 9 recloses: at most 8
bad-feeder-params.yaml:13: feeders[0].reclose.intervals[0]: open interval 0s is outside (0s, 1h]
bad-feeder-params.yaml:14: feeders[0].reclose.reset: reset -1s is outside (0s, 24h]`,
		"bad-feeder-topology": `bad-feeder-topology.yaml:10: feeders[0].nodes[2].kind: "fuse" is not one of breaker, recloser, sectionalizer, switch, sensor, meter, section
bad-feeder-topology.yaml:10: feeders[0].nodes[2].upstream: unknown node "A-S9"
bad-feeder-topology.yaml:11: feeders[0].nodes[3].upstream: feeder A has 2 nodes without upstream (A-BRK, A-S3): exactly one is its source
bad-feeder-topology.yaml:12: feeders[0].nodes[4].upstream: upstream cycle A-S4 -> A-S5 -> A-S4
bad-feeder-topology.yaml:13: feeders[0].nodes[5].section: load -5 kW is negative or not a number
bad-feeder-topology.yaml:14: feeders[0].nodes[6].id: duplicate node id "A-S1" (first at feeders[0].nodes[1].id)
bad-feeder-topology.yaml:15: feeders[1].id: no node is on feeder "B"`,
		"bad-fleet-count":                 `bad-fleet-count.yaml:3: fleets[0].count: count 0 is outside 1..10000`,
		"bad-fleet-id":                    `bad-fleet-id.yaml:5: fleets[0].id_prefix: device SIM-002 is already defined at devices[0]`,
		"bad-fleet-port-collision":        `bad-fleet-port-collision.yaml:5: fleets[0].base_port: port 6005 is already used by devices[0] (A)`,
		"bad-fleet-ports":                 `bad-fleet-ports.yaml:3: fleets[0].base_port: ports 65400..65599 are outside 1..65535`,
		"bad-fleet-unit":                  `bad-fleet-unit.yaml:3: fleets[0].unit: with units_per_port > 1 units are 1..units_per_port`,
		"bad-listen":                      `bad-listen.yaml:1: listen: "127.0.0.1:80" is not an IP address or localhost (ports are set per device)`,
		"bad-missing-nominal":             `bad-missing-nominal.yaml:3: devices[0]: nominal_voltage is required: profile sel751a has voltage points`,
		"bad-no-devices":                  `bad-no-devices.yaml:1: no devices and no fleets`,
		"bad-no-endpoint":                 `bad-no-endpoint.yaml:3: devices[0]: set exactly one of port, gateway and serial`,
		"bad-profile-file":                `bad-profile-file.yaml:1: profiles[1]: load profile testdata/config/missing.yaml: no such file`,
		"bad-pty":                         `bad-pty.yaml:5: serial[0]: a pseudo-terminal (pty: true) has no baud, data_bits, parity or stop_bits`,
		"bad-serial":                      `bad-serial.yaml:3: serial[0]: serial line /dev/ttyS1: parity must be N, E or O, not "X"`,
		"bad-syntax":                      `bad-syntax.yaml:2: did not find expected '-' indicator`,
		"bad-tick":                        `bad-tick.yaml:1: tick: 1ms is shorter than 10ms`,
		"bad-tls":                         `bad-tls.yaml:3: devices[0].transport: tcp+tls needs the tls section (cert_file, key_file, client_ca_file)`,
		"bad-tls-files":                   `bad-tls-files.yaml:4: tls.key_file: missing`,
		"bad-tls-unused":                  `bad-tls-unused.yaml:4: tls: no endpoint has transport tcp+tls`,
		"bad-transport":                   `bad-transport.yaml:3: devices[0].transport: transport "udp" is not tcp, tcp+tls or rtuovertcp`,
		"bad-transport-on-gateway-device": `bad-transport-on-gateway-device.yaml:4: devices[0].transport: transport belongs to the gateway or serial line, not to a device on it`,
		"bad-two-documents":               `bad-two-documents.yaml:4: only one YAML document is allowed`,
		"bad-two-endpoints":               `bad-two-endpoints.yaml:4: devices[0]: set exactly one of port, gateway and serial`,
		"bad-type":                        `bad-type.yaml:3: devices[0].unit: want an integer, got "one"`,
		"bad-unit":                        `bad-unit.yaml:3: devices[0].unit: unit 248 is outside 1..247`,
		"bad-unknown-gateway":             `bad-unknown-gateway.yaml:3: devices[0].gateway: no gateway "gw9"`,
		"bad-unknown-key":                 `bad-unknown-key.yaml:6: devices[0].prot: unknown key "prot" (did you mean "port"?)`,
		"bad-unknown-profile":             `bad-unknown-profile.yaml:3: devices[0].profile: no profile "sel751" in the profile files`,
		"bad-unused-gateway":              `bad-unused-gateway.yaml:2: gateways[0]: gateway gw1 serves no device`,
		"bad-value-point":                 `bad-value-point.yaml:9: devices[0].values.vx: profile sel751a has no point vx`,
		"bad-value-type":                  `bad-value-type.yaml:9: devices[0].values.va: int32 point va takes a number, not "high"`,
	}
	files, err := filepath.Glob("testdata/config/bad-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Fatalf("%d bad fixtures, %d expectations", len(files), len(tests))
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := LoadConfig("testdata/config/"+name+".yaml", simtest.Profiles)
			want := "testdata/config/" + strings.ReplaceAll(want, "\n", "\ntestdata/config/")
			if err == nil || err.Error() != want {
				t.Fatalf("error\n%v\nwant\n%s", err, want)
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig("testdata/config/none.yaml", simtest.Profiles)
	if err == nil || err.Error() != "read sim config: open testdata/config/none.yaml: no such file or directory" {
		t.Fatalf("error %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func TestLoadConfigFeeders(t *testing.T) {
	cfg, err := LoadConfig("testdata/config/feeders.yaml", simtest.Profiles)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Feeders) != 2 {
		t.Fatalf("%d feeders", len(cfg.Feeders))
	}
	a, b := cfg.Feeders[0], cfg.Feeders[1]
	if a.Topology.ID != "A" || a.NominalVoltage != 7200 || a.SourcePU != 1.03 || a.PowerFactor != 0.9 || a.Frequency != 50 || a.DropPerMW != 0.01 || a.TripDelay != 100*time.Millisecond {
		t.Fatalf("feeder A %+v", a)
	}
	if b.Topology.ID != "B" || math.Abs(b.NominalVoltage-7199.56) > 0.01 || b.SourcePU != 1 || b.PowerFactor != 0.95 || b.Frequency != 60 || b.DropPerMW != 0.002 || b.TripDelay != 0 {
		t.Fatalf("feeder B %+v", b)
	}
	type node struct {
		id, kind, parent string
		device           int
		open             bool
		tie              physics.NodeRef
		intervals        []time.Duration
		reset            time.Duration
		counts           int
		load             float64
	}
	var got []node
	for _, f := range cfg.Feeders {
		for i, n := range f.Topology.Nodes {
			parent := ""
			if n.Parent >= 0 {
				parent = f.Topology.Nodes[n.Parent].ID
			}
			nc := f.Nodes[i]
			got = append(got, node{n.ID, string(n.Kind), parent, nc.Device, nc.NormallyOpen, nc.Tie, nc.Reclose.Intervals, nc.Reclose.Reset, nc.Counts, nc.Section.LoadKW})
		}
	}
	none := physics.NodeRef{Feeder: -1, Node: -1}
	s := time.Second
	want := []node{
		{"A-BRK", "breaker", "", 0, false, none, []time.Duration{30 * s}, 2 * time.Minute, 2, 0},
		{"A-S1", "section", "A-BRK", -1, false, none, nil, time.Minute, 2, 500},
		{"A-REC", "recloser", "A-S1", 1, false, none, []time.Duration{s, 10 * s}, time.Minute, 2, 0},
		{"A-SEC", "sectionalizer", "A-REC", -1, false, none, nil, time.Minute, 3, 0},
		{"A-MTR", "meter", "A-SEC", 2, false, none, nil, time.Minute, 2, 20},
		{"B-BRK", "breaker", "", 3, false, none, nil, time.Minute, 2, 0},
		{"B-REC", "recloser", "B-BRK", -1, false, none, []time.Duration{2 * s, 5 * s, 15 * s}, time.Minute, 2, 0},
		{"B-TIE", "switch", "B-REC", 4, true, physics.NodeRef{Feeder: 0, Node: 3}, nil, time.Minute, 2, 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("nodes\n%v\nwant\n%v", got, want)
	}
	if sec := a.Nodes[1].Section; sec.Customers != 200 || sec.Critical != 2 {
		t.Fatalf("A-S1 section %+v", sec)
	}
	// A device on no feeder keeps its current; values pin points.
	if lab := cfg.Devices[5]; lab.ID != "LAB" || lab.Current != 5 {
		t.Fatalf("LAB %+v", lab)
	}
	sim, err := Build(cfg, t0)
	if err != nil {
		t.Fatal(err)
	}
	if v := simtest.Value(t, sim.Devices[2], "kw"); v != 5 {
		t.Fatalf("A-MTR kw = %v, want the pinned 5", v)
	}
	if st, _ := sim.State("A-MTR"); !slices.Equal(st.Pinned, []string{"kw"}) {
		t.Fatalf("A-MTR pinned %v", st.Pinned)
	}
	if v, err := sim.Devices[1].Text("model"); err != nil || v != "RC10" {
		t.Fatalf("A-REC model %q (%v)", v, err)
	}
}
