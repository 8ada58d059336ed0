package sim

import (
	"fmt"
	"maps"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sim/devsrv"
	"github.com/feederd/feederd/internal/sim/physics"
	"github.com/feederd/feederd/internal/yamlfile"
)

// Config is a validated simulator configuration: every device with its
// profile and the endpoint that serves it. LoadConfig builds it from a YAML
// file of this form (unknown keys are errors; messages carry file:line):
//
//	seed: 1                  # noise seed (default 1)
//	tick: 1s                 # the physics step in simulated time (default 1s, at least 10ms)
//	listen: 127.0.0.1        # host of every TCP listener (default 127.0.0.1)
//	http: 127.0.0.1:9201     # optional HTTP API: devices, control, /healthz (see Sim.Handler)
//	profiles:                # profile files, relative to this file
//	  - ../profiles/sel751a.yaml
//	devices:
//	  - id: F101-BRK
//	    profile: sel751a     # a profile's name
//	    unit: 1              # 1..247
//	    port: 5020           # its own TCP port (transport: tcp, tcp+tls or rtuovertcp; default tcp),
//	    # gateway: gw1       # or a shared gateway port,
//	    # serial: bus1       # or a serial line: exactly one of the three
//	    nominal_voltage: 7200  # 1 pu as the device reports it; required with voltage points
//	    current: 200         # amperes per phase (default 200)
//	    values: {va: 7210}   # fixed values (numbers, or text for string points)
//	gateways:
//	  - {id: gw1, port: 5100, transport: tcp}   # tcp, tcp+tls or rtuovertcp
//	serial:
//	  - {id: bus1, path: /dev/ttyS1, baud: 19200, parity: N, data_bits: 8, stop_bits: 1}
//	  - {id: bus2, pty: true, path: rtu-bus2}   # rtusim creates a PTY (and links path
//	                                           # to it, when set) and prints its path
//	tls:                     # Modbus/TCP Security, for transport tcp+tls; relative
//	  cert_file: server.pem  # to this file, read at start: the server's certificate,
//	  key_file: server.key   # its key, and the CA bundle that client
//	  client_ca_file: ca.pem # certificates must chain to
//	fleets:                  # generated devices for load tests
//	  - id_prefix: SIM-      # SIM-001, SIM-002, ...
//	    count: 200
//	    profile: feeder-rtu
//	    nominal_voltage: 7200
//	    base_port: 6000      # first port
//	    units_per_port: 1    # 1: a port per device (unit `unit`, default 1);
//	                         # n>1: gateway ports of n units each, units 1..n
//	    transport: tcp
//	feeders:                 # optional: the topology the devices sit on
//	  - id: F101
//	    nominal_voltage: 7200    # 1 pu, line-to-neutral volts on the primary,
//	    # source_kv: 12.47       # or the line-to-line kV: exactly one of the two
//	    source_pu: 1.0           # substation bus voltage (default 1.0)
//	    power_factor: 0.95       # of the load (default 0.95)
//	    frequency: 60            # Hz (default 60)
//	    drop_per_mw: 0.002       # pu of voltage drop along a section per MW through it (default 0.002)
//	    trip_delay: 0s           # fault current flows this long before a trip (default 0)
//	    reclose:                 # reclosers' sequence (default intervals [2s, 5s, 15s], reset 60s):
//	      intervals: [2s, 5s, 15s]   # open time before each reclose: 3 recloses, lockout on the 4th trip
//	      reset: 60s             # a reclose that holds this long ends the sequence (shots back to 0)
//	    nodes:                   # the feeder as a tree: exactly one node without upstream
//	      - id: F101-BRK         # a node ID; scenario events target node, device and feeder IDs
//	        kind: breaker        # breaker, recloser, sectionalizer, switch, sensor, meter, or
//	                             # section (line with load and no device)
//	        device: F101-BRK     # the device that serves its registers (optional)
//	        upstream: ""         # the parent node
//	        section: {load_kw: 900, customers: 450, critical: 1}  # load at the daily peak
//	        normally_open: false # switching nodes: start open
//	        tie: F102-S3         # switches: the node of another feeder whose section closing this switch connects
//	        reclose: {intervals: [30s]}  # breakers and reclosers: their own sequence
//	                             # (breakers do not reclose unless they have one)
//	        counts: 2            # sectionalizers: trips upstream before they open (default 2)
//
// A device on a feeder is driven by the feeder physics (internal/sim/physics),
// and its current setting must stay unset; a node with a device's ID must
// serve that device. Devices on no feeder get steady, noisy values
// (physics.Steady).
type Config struct {
	Source   string
	Seed     uint64
	Tick     time.Duration
	HTTP     string
	Profiles map[string]*profile.Profile
	// Devices in file order, fleets' devices after the listed ones.
	Devices   []DeviceConfig
	Endpoints []EndpointConfig
	// Feeders in file order. A device on a feeder is driven by the feeder
	// physics; the others by a Steady driver.
	Feeders []physics.FeederConfig
	// TLS is the server side of Modbus/TCP Security, for endpoints with
	// transport tcp+tls: file paths resolved against the config's
	// directory, read when Run starts.
	TLS *TLSFiles
}

// TLSFiles are the PEM files of LoadTLSConfig.
type TLSFiles struct {
	CertFile, KeyFile, ClientCAFile string
}

// DeviceConfig is one simulated device.
type DeviceConfig struct {
	ID             string
	Profile        *profile.Profile
	Unit           uint8
	Endpoint       int // index in Config.Endpoints
	NominalVoltage float64
	Current        float64
	Values         map[string]float64
	Strings        map[string]string
}

// EndpointConfig is one listener or serial line.
type EndpointConfig struct {
	// ID is the device ID for a device's own port, else the gateway or
	// serial line ID.
	ID        string
	Transport devsrv.Transport
	Addr      string              // host:port for TCP transports
	Serial    devsrv.SerialConfig // for TransportRTU
	// Gateway: a TCP endpoint declared as a gateway (or a fleet's shared
	// port), which serves its units as a gateway does even with one.
	Gateway bool
	// PTY: for TransportRTU, create a pseudo-terminal (Serial.Path, when
	// set, becomes a symlink to it) instead of opening a serial line.
	PTY     bool
	Devices []int // indexes in Config.Devices
}

type fileConfig struct {
	Seed     *uint64       `yaml:"seed"`
	Tick     time.Duration `yaml:"tick"`
	Listen   string        `yaml:"listen"`
	HTTP     string        `yaml:"http"`
	Profiles []string      `yaml:"profiles"`
	Devices  []fileDevice  `yaml:"devices"`
	Gateways []fileGateway `yaml:"gateways"`
	Serial   []fileSerial  `yaml:"serial"`
	TLS      *fileTLS      `yaml:"tls"`
	Fleets   []fileFleet   `yaml:"fleets"`
	Feeders  []fileFeeder  `yaml:"feeders"`
}

type fileDevice struct {
	ID             string         `yaml:"id"`
	Profile        string         `yaml:"profile"`
	Unit           int            `yaml:"unit"`
	Port           int            `yaml:"port"`
	Transport      string         `yaml:"transport"`
	Gateway        string         `yaml:"gateway"`
	Serial         string         `yaml:"serial"`
	NominalVoltage float64        `yaml:"nominal_voltage"`
	Current        float64        `yaml:"current"`
	Values         map[string]any `yaml:"values"`
}

type fileGateway struct {
	ID        string `yaml:"id"`
	Port      int    `yaml:"port"`
	Transport string `yaml:"transport"`
}

type fileTLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

type fileSerial struct {
	ID       string `yaml:"id"`
	PTY      bool   `yaml:"pty"`
	Path     string `yaml:"path"`
	Baud     int    `yaml:"baud"`
	Parity   string `yaml:"parity"`
	DataBits int    `yaml:"data_bits"`
	StopBits int    `yaml:"stop_bits"`
}

type fileFleet struct {
	IDPrefix       string  `yaml:"id_prefix"`
	Count          int     `yaml:"count"`
	Profile        string  `yaml:"profile"`
	NominalVoltage float64 `yaml:"nominal_voltage"`
	Current        float64 `yaml:"current"`
	BasePort       int     `yaml:"base_port"`
	UnitsPerPort   int     `yaml:"units_per_port"`
	Unit           int     `yaml:"unit"`
	Transport      string  `yaml:"transport"`
}

// maxFleet bounds one fleet's count.
const maxFleet = 10000

// LoadConfig reads and validates a simulator configuration. loadProfile
// reads one profile file (config.LoadProfile in rtusim); profile paths are
// relative to the configuration file.
func LoadConfig(path string, loadProfile func(path string) (*profile.Profile, error)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read sim config: %w", err)
	}
	return ParseConfig(path, data, loadProfile)
}

// ParseConfig validates a simulator configuration read from path.
func ParseConfig(path string, data []byte, loadProfile func(path string) (*profile.Profile, error)) (*Config, error) {
	sink := yamlfile.NewSink(path)
	var f fileConfig
	if !yamlfile.Decode(data, &f, sink) {
		return nil, sink.Err()
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil { // parsed once already
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c := newChecker(path, &root, sink)
	c.file = &f
	c.cfg = &Config{
		Source:   path,
		Seed:     1,
		Tick:     f.Tick,
		HTTP:     f.HTTP,
		Profiles: map[string]*profile.Profile{},
	}
	// Checks run on what decoded: a value that did not decode keeps its
	// zero, and an error already at its path is the one reported there.
	c.build(&f, loadProfile)
	if err := c.err(); err != nil {
		return nil, err
	}
	return c.cfg, nil
}

// checker validates a decoded file. Its errors go to a yamlfile.Sink, so that
// rtusim reports every problem of a file as feederd does: sorted by line,
// "file:line: key.path: message", the first at each key path.
type checker struct {
	path string
	root *yaml.Node
	sink *yamlfile.Sink
	// decoded holds the key paths where decoding failed: a check of a
	// mapping above one of them would only repeat that error.
	decodeErrs []string
	file       *fileConfig
	cfg        *Config
	// ports maps a TCP port to the path of its user, for collisions.
	ports map[int]string
}

// errf records an error at the line of key path p ("devices", 2, "port").
func (c *checker) errf(p []any, format string, args ...any) {
	if c.sink == nil {
		c.sink = yamlfile.NewSink(c.path)
	}
	ps := pathString(p)
	for _, e := range c.decodeErrs {
		if e == ps || strings.HasPrefix(e, ps+".") || strings.HasPrefix(e, ps+"[") {
			return
		}
	}
	c.sink.AddAt(lineOf(c.root, p), ps, nil, format, args...)
}

// newChecker starts the checks of a file whose decoding went to sink.
func newChecker(path string, root *yaml.Node, sink *yamlfile.Sink) checker {
	c := checker{path: path, root: root, sink: sink}
	for _, e := range sink.Sorted() {
		c.decodeErrs = append(c.decodeErrs, e.Path)
	}
	return c
}

// failed reports whether an error was recorded.
func (c *checker) failed() bool { return c.sink != nil && c.sink.Len() > 0 }

// err returns the errors recorded, sorted by line (*yamlfile.Errors), or nil.
func (c *checker) err() error {
	if c.sink == nil {
		return nil
	}
	return c.sink.Err()
}

func pathString(p []any) string {
	var b strings.Builder
	for _, e := range p {
		switch v := e.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(v)
		case int:
			fmt.Fprintf(&b, "[%d]", v)
		}
	}
	return b.String()
}

// lineOf finds the line of the deepest node of path p that exists: a
// mapping key's own line, a sequence item's line.
func lineOf(root *yaml.Node, p []any) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, e := range p {
		switch k := e.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return line
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					line, n, found = n.Content[i].Line, n.Content[i+1], true
					break
				}
			}
			if !found {
				return line
			}
		case int:
			if n.Kind != yaml.SequenceNode || k >= len(n.Content) {
				return line
			}
			n = n.Content[k]
			line = n.Line
		}
	}
	return line
}

func at(p ...any) []any { return p }

func (c *checker) build(f *fileConfig, loadProfile func(string) (*profile.Profile, error)) {
	cfg := c.cfg
	if f.Seed != nil {
		cfg.Seed = *f.Seed
	}
	switch {
	case f.Tick == 0:
		cfg.Tick = time.Second
	case f.Tick < 10*time.Millisecond:
		c.errf(at("tick"), "%s is shorter than 10ms", f.Tick)
	}
	host := f.Listen
	if host == "" {
		host = "127.0.0.1"
	} else if net.ParseIP(host) == nil && host != "localhost" {
		c.errf(at("listen"), "%q is not an IP address or localhost (ports are set per device)", host)
	}
	if f.HTTP != "" {
		if _, _, err := net.SplitHostPort(f.HTTP); err != nil {
			c.errf(at("http"), "%q is not host:port", f.HTTP)
		}
	}
	c.ports = map[int]string{}
	if t := f.TLS; t != nil {
		files := TLSFiles{CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile}
		for _, kv := range []struct {
			key  string
			path *string
		}{{"cert_file", &files.CertFile}, {"key_file", &files.KeyFile}, {"client_ca_file", &files.ClientCAFile}} {
			switch {
			case *kv.path == "":
				c.errf(at("tls", kv.key), "missing")
			case !filepath.IsAbs(*kv.path):
				*kv.path = filepath.Join(filepath.Dir(c.path), *kv.path)
			}
		}
		cfg.TLS = &files
	}

	c.loadProfiles(f.Profiles, loadProfile)

	gateways := map[string]int{} // id -> endpoint index
	for i, g := range f.Gateways {
		p := at("gateways", i)
		if !c.checkID(g.ID, append(p, "id")) {
			continue
		}
		if _, dup := gateways[g.ID]; dup {
			c.errf(append(p, "id"), "gateway %s is defined twice", g.ID)
			continue
		}
		tr, ok := c.tcpTransport(g.Transport, append(p, "transport"))
		if !c.claimPort(g.Port, append(p, "port"), "gateways["+strconv.Itoa(i)+"] ("+g.ID+")") || !ok {
			gateways[g.ID] = -1 // known but broken: its devices add no errors
			continue
		}
		gateways[g.ID] = c.addEndpoint(EndpointConfig{ID: g.ID, Transport: tr, Addr: net.JoinHostPort(host, strconv.Itoa(g.Port)), Gateway: true})
	}

	buses := map[string]int{}
	for i, s := range f.Serial {
		p := at("serial", i)
		if !c.checkID(s.ID, append(p, "id")) {
			continue
		}
		if _, dup := buses[s.ID]; dup {
			c.errf(append(p, "id"), "serial line %s is defined twice", s.ID)
			continue
		}
		sc := devsrv.SerialConfig{Path: s.Path, Baud: s.Baud, DataBits: s.DataBits, Parity: s.Parity, StopBits: s.StopBits}
		if s.PTY {
			if s.Baud != 0 || s.DataBits != 0 || s.Parity != "" || s.StopBits != 0 {
				c.errf(p, "a pseudo-terminal (pty: true) has no baud, data_bits, parity or stop_bits")
				buses[s.ID] = -1
				continue
			}
			if sc.Path != "" && !filepath.IsAbs(sc.Path) {
				sc.Path = filepath.Join(filepath.Dir(c.path), sc.Path)
			}
			buses[s.ID] = c.addEndpoint(EndpointConfig{ID: s.ID, Transport: devsrv.TransportRTU, Serial: sc, PTY: true})
			continue
		}
		if err := sc.Validate(); err != nil {
			c.errf(p, "%v", err)
			buses[s.ID] = -1
			continue
		}
		buses[s.ID] = c.addEndpoint(EndpointConfig{ID: s.ID, Transport: devsrv.TransportRTU, Serial: sc})
	}

	ids := map[string]string{} // device id -> path of its definition
	for i, d := range f.Devices {
		p := at("devices", i)
		where := fmt.Sprintf("devices[%d] (%s)", i, d.ID)
		if !c.checkID(d.ID, append(p, "id")) {
			continue
		}
		if prev, dup := ids[d.ID]; dup {
			c.errf(append(p, "id"), "device %s is already defined at %s", d.ID, prev)
			continue
		}
		ids[d.ID] = fmt.Sprintf("devices[%d]", i)
		prof, ok := c.profile(d.Profile, append(p, "profile"))
		unitOK := d.Unit >= 1 && d.Unit <= 247
		if !unitOK {
			c.errf(append(p, "unit"), "unit %d is outside 1..247", d.Unit)
		}
		if !c.checkElectrical(prof, d.NominalVoltage, d.Current, p) {
			ok = false
		}
		dc := DeviceConfig{ID: d.ID, Profile: prof, Unit: uint8(d.Unit), NominalVoltage: d.NominalVoltage, Current: d.Current}
		if prof != nil && !c.values(&dc, d.Values, append(p, "values")) {
			ok = false
		}

		set := 0
		for _, b := range []bool{d.Port != 0, d.Gateway != "", d.Serial != ""} {
			if b {
				set++
			}
		}
		if set != 1 {
			c.errf(p, "set exactly one of port, gateway and serial")
			continue
		}
		if d.Transport != "" && d.Port == 0 {
			c.errf(append(p, "transport"), "transport belongs to the gateway or serial line, not to a device on it")
			continue
		}
		ep := -1
		switch {
		case d.Port != 0:
			tr, trOK := c.tcpTransport(d.Transport, append(p, "transport"))
			if c.claimPort(d.Port, append(p, "port"), where) && trOK {
				ep = c.addEndpoint(EndpointConfig{ID: d.ID, Transport: tr, Addr: net.JoinHostPort(host, strconv.Itoa(d.Port))})
			}
		case d.Gateway != "":
			var found bool
			if ep, found = gateways[d.Gateway]; !found {
				c.errf(append(p, "gateway"), "no gateway %q", d.Gateway)
				ep = -1
			}
		default:
			var found bool
			if ep, found = buses[d.Serial]; !found {
				c.errf(append(p, "serial"), "no serial line %q", d.Serial)
				ep = -1
			}
		}
		// ep is -1 for an endpoint that failed its own checks.
		if ep < 0 || !ok || !unitOK {
			continue
		}
		if !c.addDevice(dc, ep, append(p, "unit")) {
			continue
		}
	}

	for i, fl := range f.Fleets {
		c.fleet(i, fl, host, ids)
	}
	c.feeders(f.Feeders, ids)

	if len(f.Devices) == 0 && len(f.Fleets) == 0 {
		c.errf(nil, "no devices and no fleets")
	}
	if c.failed() {
		return // an unused endpoint is likely a consequence
	}
	for i, g := range f.Gateways {
		if ep, ok := gateways[g.ID]; ok && ep >= 0 && len(cfg.Endpoints[ep].Devices) == 0 {
			c.errf(at("gateways", i), "gateway %s serves no device", g.ID)
		}
	}
	for i, s := range f.Serial {
		if ep, ok := buses[s.ID]; ok && ep >= 0 && len(cfg.Endpoints[ep].Devices) == 0 {
			c.errf(at("serial", i), "serial line %s serves no device", s.ID)
		}
	}
	if cfg.TLS != nil && !slices.ContainsFunc(cfg.Endpoints, func(e EndpointConfig) bool { return e.Transport == devsrv.TransportTLS }) {
		c.errf(at("tls"), "no endpoint has transport tcp+tls")
	}
}

func (c *checker) loadProfiles(paths []string, load func(string) (*profile.Profile, error)) {
	if len(paths) == 0 {
		c.errf(at("profiles"), "no profile files")
		return
	}
	dir := filepath.Dir(c.path)
	for i, rel := range paths {
		path := rel
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, rel)
		}
		prof, err := load(path)
		if err != nil {
			c.errf(at("profiles", i), "%v", err)
			continue
		}
		if prev, dup := c.cfg.Profiles[prof.Name]; dup {
			c.errf(at("profiles", i), "profile %s is also defined in %s", prof.Name, prev.Source)
			continue
		}
		c.cfg.Profiles[prof.Name] = prof
	}
}

func (c *checker) checkID(id string, p []any) bool {
	if id == "" {
		c.errf(p, "missing")
		return false
	}
	return true
}

func (c *checker) profile(name string, p []any) (*profile.Profile, bool) {
	if name == "" {
		c.errf(p, "missing")
		return nil, false
	}
	prof, ok := c.cfg.Profiles[name]
	if !ok {
		c.errf(p, "no profile %q in the profile files", name)
		return nil, false
	}
	return prof, true
}

func (c *checker) tcpTransport(s string, p []any) (devsrv.Transport, bool) {
	switch devsrv.Transport(s) {
	case "", devsrv.TransportTCP:
		return devsrv.TransportTCP, true
	case devsrv.TransportRTUOverTCP:
		return devsrv.TransportRTUOverTCP, true
	case devsrv.TransportTLS:
		if c.file.TLS == nil {
			c.errf(p, "tcp+tls needs the tls section (cert_file, key_file, client_ca_file)")
			return "", false
		}
		return devsrv.TransportTLS, true
	}
	c.errf(p, "transport %q is not tcp, tcp+tls or rtuovertcp", s)
	return "", false
}

func (c *checker) claimPort(port int, p []any, who string) bool {
	if port < 1 || port > 65535 {
		c.errf(p, "port %d is outside 1..65535", port)
		return false
	}
	if prev, used := c.ports[port]; used {
		c.errf(p, "port %d is already used by %s", port, prev)
		return false
	}
	c.ports[port] = who
	return true
}

func (c *checker) checkElectrical(prof *profile.Profile, nominal, current float64, p []any) bool {
	ok := true
	if nominal < 0 || math.IsNaN(nominal) {
		c.errf(append(p, "nominal_voltage"), "%g is negative", nominal)
		ok = false
	}
	if current < 0 || math.IsNaN(current) {
		c.errf(append(p, "current"), "%g is negative", current)
		ok = false
	}
	if prof != nil && nominal == 0 && physics.HasVoltage(prof) {
		c.errf(p, "nominal_voltage is required: profile %s has voltage points", prof.Name)
		return false
	}
	return ok
}

func (c *checker) values(dc *DeviceConfig, vals map[string]any, p []any) bool {
	ok := true
	for _, name := range slices.Sorted(maps.Keys(vals)) {
		v := vals[name]
		var pt *profile.Point
		for i := range dc.Profile.Points {
			if dc.Profile.Points[i].Name == name {
				pt = &dc.Profile.Points[i]
				break
			}
		}
		if pt == nil {
			c.errf(append(p, name), "profile %s has no point %s", dc.Profile.Name, name)
			ok = false
			continue
		}
		switch x := v.(type) {
		case int:
			v = float64(x)
		case uint64:
			v = float64(x)
		}
		switch x := v.(type) {
		case float64:
			if pt.Type == profile.String {
				c.errf(append(p, name), "string point %s takes text, not %g", name, x)
				ok = false
				continue
			}
			if dc.Values == nil {
				dc.Values = map[string]float64{}
			}
			dc.Values[name] = x
		case string:
			if pt.Type != profile.String {
				c.errf(append(p, name), "%s point %s takes a number, not %q", pt.Type, name, x)
				ok = false
				continue
			}
			if dc.Strings == nil {
				dc.Strings = map[string]string{}
			}
			dc.Strings[name] = x
		default:
			c.errf(append(p, name), "value must be a number or text, not %v", v)
			ok = false
		}
	}
	return ok
}

func (c *checker) addEndpoint(e EndpointConfig) int {
	c.cfg.Endpoints = append(c.cfg.Endpoints, e)
	return len(c.cfg.Endpoints) - 1
}

// addDevice puts dc on endpoint ep unless its unit is taken there.
func (c *checker) addDevice(dc DeviceConfig, ep int, p []any) bool {
	e := &c.cfg.Endpoints[ep]
	for _, i := range e.Devices {
		if o := c.cfg.Devices[i]; o.Unit == dc.Unit {
			c.errf(p, "unit %d on %s is already device %s", dc.Unit, e.ID, o.ID)
			return false
		}
	}
	dc.Endpoint = ep
	c.cfg.Devices = append(c.cfg.Devices, dc)
	e.Devices = append(e.Devices, len(c.cfg.Devices)-1)
	return true
}

func (c *checker) fleet(i int, fl fileFleet, host string, ids map[string]string) {
	p := at("fleets", i)
	prof, ok := c.profile(fl.Profile, append(p, "profile"))
	if fl.Count < 1 || fl.Count > maxFleet {
		c.errf(append(p, "count"), "count %d is outside 1..%d", fl.Count, maxFleet)
		ok = false
	}
	if !c.checkElectrical(prof, fl.NominalVoltage, fl.Current, p) {
		ok = false
	}
	perPort := fl.UnitsPerPort
	if perPort == 0 {
		perPort = 1
	}
	if perPort < 1 || perPort > 247 {
		c.errf(append(p, "units_per_port"), "%d is outside 1..247", fl.UnitsPerPort)
		ok = false
	}
	unit := fl.Unit
	switch {
	case unit != 0 && perPort > 1:
		c.errf(append(p, "unit"), "with units_per_port > 1 units are 1..units_per_port")
		ok = false
	case unit == 0:
		unit = 1
	case unit < 1 || unit > 247:
		c.errf(append(p, "unit"), "unit %d is outside 1..247", unit)
		ok = false
	}
	tr, trOK := c.tcpTransport(fl.Transport, append(p, "transport"))
	if !ok || !trOK {
		return
	}
	ports := (fl.Count + perPort - 1) / perPort
	if fl.BasePort < 1 || fl.BasePort+ports-1 > 65535 {
		c.errf(append(p, "base_port"), "ports %d..%d are outside 1..65535", fl.BasePort, fl.BasePort+ports-1)
		return
	}
	width := max(3, len(strconv.Itoa(fl.Count)))
	ep := -1
	for k := range fl.Count {
		id := fmt.Sprintf("%s%0*d", fl.IDPrefix, width, k+1)
		if prev, dup := ids[id]; dup {
			c.errf(append(p, "id_prefix"), "device %s is already defined at %s", id, prev)
			return
		}
		ids[id] = fmt.Sprintf("fleets[%d]", i)
		if k%perPort == 0 {
			port := fl.BasePort + k/perPort
			epID := id
			if perPort > 1 {
				epID = fmt.Sprintf("%sgw%d", fl.IDPrefix, k/perPort+1)
			}
			if !c.claimPort(port, append(p, "base_port"), fmt.Sprintf("fleets[%d] (%s)", i, epID)) {
				return
			}
			ep = c.addEndpoint(EndpointConfig{ID: epID, Transport: tr, Addr: net.JoinHostPort(host, strconv.Itoa(port)), Gateway: perPort > 1})
		}
		u := unit
		if perPort > 1 {
			u = k%perPort + 1
		}
		c.addDevice(DeviceConfig{ID: id, Profile: prof, Unit: uint8(u), NominalVoltage: fl.NominalVoltage, Current: fl.Current}, ep, append(p, "unit"))
	}
}
