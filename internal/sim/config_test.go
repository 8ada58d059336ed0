package sim

import (
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/profile"
)

func TestLoadConfigGood(t *testing.T) {
	var loaded []string
	load := func(path string) (*profile.Profile, error) {
		loaded = append(loaded, path)
		return testProfiles(path)
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
		id   string
		tr   Transport
		addr string
		devs []int
	}
	var eps []ep
	for _, e := range cfg.Endpoints {
		eps = append(eps, ep{e.ID, e.Transport, e.Addr, e.Devices})
	}
	wantEps := []ep{
		{"gw1", TransportTCP, "127.0.0.1:15100", []int{2, 3}},
		{"bus1", TransportRTU, "", []int{4}},
		{"F101-BRK", TransportTCP, "127.0.0.1:15020", []int{0}},
		{"F101-REC", TransportRTUOverTCP, "127.0.0.1:15021", []int{1}},
		{"SIM-001", TransportTCP, "127.0.0.1:16000", []int{5}},
		{"SIM-002", TransportTCP, "127.0.0.1:16001", []int{6}},
		{"SIM-003", TransportTCP, "127.0.0.1:16002", []int{7}},
		{"GW-gw1", TransportRTUOverTCP, "127.0.0.1:16100", []int{8, 9}},
		{"GW-gw2", TransportRTUOverTCP, "127.0.0.1:16101", []int{10, 11}},
		{"GW-gw3", TransportRTUOverTCP, "127.0.0.1:16102", []int{12}},
	}
	if !reflect.DeepEqual(eps, wantEps) {
		t.Fatalf("endpoints\n%v\nwant\n%v", eps, wantEps)
	}
	wantSerial := SerialConfig{Path: "/dev/ttyS9", Baud: 9600, DataBits: 8, Parity: "E", StopBits: 1}
	if got := cfg.Endpoints[1].Serial; got != wantSerial {
		t.Fatalf("serial %+v, want %+v", got, wantSerial)
	}
}

// TestDemoConfig pins the demo fleet that configs/demo.yaml (feederd's side)
// is written against.
func TestDemoConfig(t *testing.T) {
	var loaded []string
	load := func(path string) (*profile.Profile, error) {
		loaded = append(loaded, filepath.ToSlash(path))
		return testProfiles(path)
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
		"F101-MTR pm5100 tcp 127.0.0.1:5022 3 120 40",
		"F102-BRK sel751a tcp 127.0.0.1:5023 1 7200 180",
		"F102-REC feeder-rtu tcp 127.0.0.1:5024 2 7200 180",
		"F102-MTR pm5100 tcp 127.0.0.1:5025 3 120 40",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("demo fleet\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if cfg.HTTP != "127.0.0.1:9201" || cfg.Seed != 1 || cfg.Tick != time.Second {
		t.Fatalf("http %s seed %d tick %s", cfg.HTTP, cfg.Seed, cfg.Tick)
	}
}

func TestLoadConfigBad(t *testing.T) {
	tests := map[string]string{
		"bad-duplicate-id":                "bad-duplicate-id.yaml:4: devices[1].id: device A is already defined at devices[0]",
		"bad-duplicate-port":              "bad-duplicate-port.yaml:4: devices[1].port: port 5020 is already used by devices[0] (A)",
		"bad-duplicate-unit":              "bad-duplicate-unit.yaml:5: devices[1].unit: unit 4 on gw1 is already device A",
		"bad-empty":                       "bad-empty.yaml: empty sim config",
		"bad-fleet-count":                 "bad-fleet-count.yaml:3: fleets[0].count: count 0 is outside 1..10000",
		"bad-fleet-id":                    "bad-fleet-id.yaml:5: fleets[0].id_prefix: device SIM-002 is already defined at devices[0]",
		"bad-fleet-port-collision":        "bad-fleet-port-collision.yaml:5: fleets[0].base_port: port 6005 is already used by devices[0] (A)",
		"bad-fleet-ports":                 "bad-fleet-ports.yaml:3: fleets[0].base_port: ports 65400..65599 are outside 1..65535",
		"bad-fleet-unit":                  "bad-fleet-unit.yaml:3: fleets[0].unit: with units_per_port > 1 units are 1..units_per_port",
		"bad-listen":                      `bad-listen.yaml:1: listen: "127.0.0.1:80" is not an IP address or localhost (ports are set per device)`,
		"bad-missing-nominal":             "bad-missing-nominal.yaml:3: devices[0]: nominal_voltage is required: profile sel751a has voltage points",
		"bad-no-devices":                  "bad-no-devices.yaml:1: no devices and no fleets",
		"bad-no-endpoint":                 "bad-no-endpoint.yaml:3: devices[0]: set exactly one of port, gateway and serial",
		"bad-profile-file":                "bad-profile-file.yaml:1: profiles[1]: load profile testdata/config/missing.yaml: no such file",
		"bad-serial":                      `bad-serial.yaml:3: serial[0]: serial line /dev/ttyS1: parity must be N, E or O, not "X"`,
		"bad-syntax":                      "bad-syntax.yaml:2: did not find expected '-' indicator",
		"bad-tick":                        "bad-tick.yaml:1: tick: 1ms is shorter than 10ms",
		"bad-transport":                   `bad-transport.yaml:3: devices[0].transport: transport "udp" is neither tcp nor rtuovertcp`,
		"bad-transport-on-gateway-device": "bad-transport-on-gateway-device.yaml:4: devices[0].transport: transport belongs to the gateway or serial line, not to a device on it",
		"bad-two-documents":               "bad-two-documents.yaml:4: a sim config is one YAML document",
		"bad-two-endpoints":               "bad-two-endpoints.yaml:4: devices[0]: set exactly one of port, gateway and serial",
		"bad-type":                        "bad-type.yaml:3: cannot unmarshal !!str `one` into int",
		"bad-unit":                        "bad-unit.yaml:3: devices[0].unit: unit 248 is outside 1..247",
		"bad-unknown-gateway":             `bad-unknown-gateway.yaml:3: devices[0].gateway: no gateway "gw9"`,
		"bad-unknown-key":                 `bad-unknown-key.yaml:6: unknown key "prot"`,
		"bad-unknown-profile":             `bad-unknown-profile.yaml:3: devices[0].profile: no profile "sel751" in the profile files`,
		"bad-unused-gateway":              "bad-unused-gateway.yaml:2: gateways[0]: gateway gw1 serves no device",
		"bad-value-point":                 "bad-value-point.yaml:9: devices[0].values.vx: profile sel751a has no point vx",
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
			_, err := LoadConfig("testdata/config/"+name+".yaml", testProfiles)
			if err == nil || err.Error() != "testdata/config/"+want {
				t.Fatalf("error\n%v\nwant\ntestdata/config/%s", err, want)
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig("testdata/config/none.yaml", testProfiles)
	if err == nil || err.Error() != "read sim config: open testdata/config/none.yaml: no such file or directory" {
		t.Fatalf("error %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
