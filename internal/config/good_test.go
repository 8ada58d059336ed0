package config

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/profile"
)

const testToken = "admin:pa55-S3CRET"

func siteEnv(name string) string {
	if name == "FEEDERD_INFLUX_TOKEN" {
		return testToken
	}
	return ""
}

func relayPoints() []profile.Point {
	return []profile.Point{
		{Name: "status", RegType: profile.Holding, Address: 10, Type: profile.Uint16, Scale: 1},
		{Name: "breaker_closed", RegType: profile.Holding, Address: 10, Type: profile.Bit, BitPos: 0, Scale: 1, Role: profile.RoleBreakerClosed},
		{Name: "lockout", RegType: profile.Holding, Address: 10, Type: profile.Bit, BitPos: 1, Scale: 1, Role: profile.RoleLockout},
		{Name: "trips", RegType: profile.Holding, Address: 20, Type: profile.Uint32, Scale: 1, Role: profile.RoleTripCount},
		{Name: "remote", RegType: profile.DiscreteInput, Address: 0, Type: profile.Bool, Scale: 1},
	}
}

func meterPoints() []profile.Point {
	return []profile.Point{
		{Name: "va", RegType: profile.Holding, Address: 0, Type: profile.Float32, Scale: 1, Unit: "V", Role: profile.RoleVoltageA},
		{Name: "vb", RegType: profile.Holding, Address: 2, Type: profile.Float32, Scale: 1, Unit: "V", Role: profile.RoleVoltageB},
		{Name: "vc", RegType: profile.Holding, Address: 4, Type: profile.Float32, Scale: 1, Unit: "V", Role: profile.RoleVoltageC},
		{Name: "ia", RegType: profile.Input, Address: 10, Type: profile.Int16, Scale: 0.1, Unit: "A", Role: profile.RoleCurrentA},
		{Name: "kw", RegType: profile.Holding, Address: 6, Type: profile.Float32, Order: profile.CDAB, Scale: 1, Unit: "kW", Role: profile.RoleActivePower},
		{Name: "serial", RegType: profile.Holding, Address: 100, Type: profile.String, Length: 4, Scale: 1},
	}
}

// linkView is a Link with its devices named instead of pointed to, so that
// links and devices compare without following each other.
type linkView struct {
	Link    Link
	Devices []string
}

func viewLink(l *Link) linkView {
	v := linkView{Link: *l}
	v.Link.Devices = nil
	for _, d := range l.Devices {
		v.Devices = append(v.Devices, d.ID)
	}
	return v
}

type deviceView struct {
	Device  Device
	Link    string
	Profile string
}

func viewDevice(d *Device) deviceView {
	v := deviceView{Device: *d, Link: d.Link.ID, Profile: d.Profile.Name}
	v.Device.Link, v.Device.Profile = nil, nil
	return v
}

type wantModel struct {
	poll     PollDefaults
	influx   Influx
	http     HTTP
	detect   detect.Params
	pipeline Pipeline
	profiles map[string]*profile.Profile
	links    []linkView
	devices  []deviceView
}

func checkModel(t *testing.T, m *Model, want wantModel) {
	t.Helper()
	if m.Poll != want.poll {
		t.Errorf("Poll:\n got %+v\nwant %+v", m.Poll, want.poll)
	}
	if !reflect.DeepEqual(m.Influx, want.influx) {
		t.Errorf("Influx:\n got %+v\nwant %+v", m.Influx, want.influx)
	}
	if got := m.Influx.Token.Reveal(); got != want.influx.Token.Reveal() {
		t.Errorf("token %q, want %q", got, want.influx.Token.Reveal())
	}
	if m.HTTP != want.http {
		t.Errorf("HTTP %+v, want %+v", m.HTTP, want.http)
	}
	if m.Detect != want.detect {
		t.Errorf("Detect:\n got %+v\nwant %+v", m.Detect, want.detect)
	}
	if m.Pipeline != want.pipeline {
		t.Errorf("Pipeline %+v, want %+v", m.Pipeline, want.pipeline)
	}
	if len(m.Profiles) != len(want.profiles) {
		t.Errorf("%d profiles, want %d", len(m.Profiles), len(want.profiles))
	}
	for name, wp := range want.profiles {
		if !reflect.DeepEqual(m.Profiles[name], wp) {
			t.Errorf("profile %s:\n got %+v\nwant %+v", name, m.Profiles[name], wp)
		}
	}
	if len(m.Links) != len(want.links) {
		t.Fatalf("%d links, want %d", len(m.Links), len(want.links))
	}
	for i, l := range m.Links {
		if got := viewLink(l); !reflect.DeepEqual(got, want.links[i]) {
			t.Errorf("link %d:\n got %+v\nwant %+v", i, got, want.links[i])
		}
	}
	if len(m.Devices) != len(want.devices) {
		t.Fatalf("%d devices, want %d", len(m.Devices), len(want.devices))
	}
	for i, d := range m.Devices {
		if got := viewDevice(d); !reflect.DeepEqual(got, want.devices[i]) {
			t.Errorf("device %d:\n got %+v\nwant %+v", i, got, want.devices[i])
		}
		// The pointers are the model's own, not copies.
		if d.Profile != m.Profiles[d.Profile.Name] {
			t.Errorf("device %s: profile is not the model's %q", d.ID, d.Profile.Name)
		}
		if !containsPtr(m.Links, d.Link) || !containsPtr(d.Link.Devices, d) {
			t.Errorf("device %s: link %q is not the model's or does not own the device", d.ID, d.Link.ID)
		}
		// Points are the device's own slice, never the profile's.
		if len(d.Points) > 0 && len(d.Profile.Points) > 0 && &d.Points[0] == &d.Profile.Points[0] {
			t.Errorf("device %s shares its points slice with profile %s", d.ID, d.Profile.Name)
		}
	}
}

func containsPtr[T any](list []*T, p *T) bool {
	for _, x := range list {
		if x == p {
			return true
		}
	}
	return false
}

func TestGoodConfigs(t *testing.T) {
	relay := &profile.Profile{Name: "relay", Vendor: "Test", Model: "R-1", Points: relayPoints(), Source: "testdata/config/profiles/relay.yaml"}
	meter := &profile.Profile{Name: "meter", Vendor: "Test", Model: "M-3", Points: meterPoints(), Source: "testdata/config/profiles/meter.yaml"}
	defQuirks := Quirks{MaxRegisters: 125, MaxBits: 2000, MaxGap: 10}
	siteDetect := detect.DefaultParams()
	siteDetect.RangeA.Low = 0.94
	siteDetect.BandPersistence = 30 * time.Second
	siteDetect.SagThreshold = 0.85
	siteDetect.Hysteresis = 0.01
	siteDetect.CommLossPolls = 5
	siteDetect.SustainedAfter = time.Minute
	tests := []struct {
		file string
		want wantModel
	}{
		{"site.yaml", wantModel{
			poll: PollDefaults{Interval: 2 * time.Second, Timeout: time.Second, BackoffInitial: 500 * time.Millisecond, BackoffMax: time.Minute, MaxGap: 4, StaleAfter: 3},
			influx: Influx{URL: "http://127.0.0.1:8086", Bucket: "feederd/autogen", Token: NewSecret(testToken),
				BatchSize: 1000, FlushInterval: time.Second, QueueSize: 1000, Timeout: 10 * time.Second, Measurement: "feeder_point",
				Gzip: true, SpoolBudget: 64 << 20, SpoolFsync: 200 * time.Millisecond},
			http:     HTTP{Listen: "127.0.0.1:0"},
			detect:   siteDetect,
			pipeline: Pipeline{Shards: 2, RingSize: 4096, DropPolicy: DropNewest},
			profiles: map[string]*profile.Profile{"relay": relay, "meter": meter},
			links: []linkView{
				{Link{ID: "sub1-gw", URL: "tcp://127.0.0.1:5020", Scheme: SchemeTCP, Timeout: time.Second,
					BackoffInitial: 500 * time.Millisecond, BackoffMax: time.Minute, PauseAfterConnect: 200 * time.Millisecond}, []string{"F101-CB"}},
				{Link{ID: "sub2-tls", URL: "tcp+tls://127.0.0.1:802", Scheme: SchemeTLS, Timeout: 500 * time.Millisecond,
					TLS:            &TLS{CertFile: "testdata/config/good/certs/client.crt", KeyFile: "testdata/config/good/certs/client.key", CAFile: "/etc/feederd/ca.crt"},
					BackoffInitial: 500 * time.Millisecond, BackoffMax: time.Minute}, []string{"F102-CB"}},
				{Link{ID: "bus1", URL: "rtu:///dev/ttyS0", Scheme: SchemeRTU, Timeout: time.Second,
					Serial:         &Serial{Baud: 9600, DataBits: 8, Parity: "E", StopBits: 1},
					BackoffInitial: time.Second, BackoffMax: 10 * time.Second}, []string{"F101-M1"}},
				{Link{ID: "moxa", URL: "rtuovertcp://127.0.0.1:4001", Scheme: SchemeRTUOverTCP, Timeout: time.Second,
					Serial:         &Serial{Baud: 19200},
					BackoffInitial: 500 * time.Millisecond, BackoffMax: time.Minute}, []string{"F102-R1"}},
			},
			devices: []deviceView{
				{Device{Index: 0, ID: "F101-CB", Feeder: "F101", Kind: KindRecloser, Unit: 1, Points: relayPoints(), Interval: 2 * time.Second, Timeout: time.Second,
					Quirks: Quirks{MaxRegisters: 125, MaxBits: 2000, MaxGap: 4}, PTRatio: 1,
					Labels: map[string]string{"substation": "north", "region": "east"}}, "sub1-gw", "relay"},
				{Device{Index: 1, ID: "F101-M1", Feeder: "F101", Upstream: "F101-CB", Kind: KindMeter, Unit: 7,
					Points:   append(meterPoints(), profile.Point{Name: "thd_va", RegType: profile.Input, Address: 200, Type: profile.Uint16, Scale: 0.01, Unit: "%"}),
					Interval: 5 * time.Second, Timeout: 3 * time.Second,
					Quirks:         Quirks{OneRequestPerPoint: true, PauseBetweenRequests: 50 * time.Millisecond, MaxRegisters: 60, MaxBits: 100, MaxGap: 0},
					NominalVoltage: 120, PTRatio: 60}, "bus1", "meter"},
				{Device{Index: 2, ID: "F102-CB", Feeder: "F102", Kind: KindBreaker, Unit: 0, Points: relayPoints(), Interval: 2 * time.Second, Timeout: time.Second,
					Quirks: Quirks{MaxRegisters: 125, MaxBits: 2000, MaxGap: 4}, PTRatio: 1}, "sub2-tls", "relay"},
				{Device{Index: 3, ID: "F102-R1", Feeder: "F102", Upstream: "F102-CB", Kind: KindRecloser, Unit: 3, Points: relayPoints(), Interval: 2 * time.Second, Timeout: time.Second,
					Quirks: Quirks{MaxRegisters: 125, MaxBits: 2000, MaxGap: 4}, PTRatio: 1}, "moxa", "relay"},
			},
		}},
		// Every default, as documented in raw.go.
		{"minimal.yaml", wantModel{
			poll: PollDefaults{Interval: time.Second, Timeout: time.Second, BackoffInitial: 500 * time.Millisecond, BackoffMax: 30 * time.Second, MaxGap: 10, StaleAfter: 3},
			influx: Influx{URL: "https://influx.example.net:8086", Bucket: "feeders", Token: NewSecret("feederd:t0ken-from-file"),
				BatchSize: 5000, FlushInterval: time.Second, QueueSize: 5000, Timeout: 10 * time.Second, Measurement: "feeder_point",
				SpoolBudget: 1 << 30},
			http:     HTTP{Listen: "127.0.0.1:9108"},
			detect:   detect.DefaultParams(),
			pipeline: Pipeline{RingSize: 16384, DropPolicy: DropOldest},
			profiles: map[string]*profile.Profile{"relay": relay},
			links: []linkView{
				{Link{ID: "gw", URL: "tcp://[::1]:502", Scheme: SchemeTCP, Timeout: time.Second, BackoffInitial: 500 * time.Millisecond, BackoffMax: 30 * time.Second}, []string{"F7-CB"}},
			},
			devices: []deviceView{
				{Device{Index: 0, ID: "F7-CB", Feeder: "F7", Kind: KindRecloser, Unit: 1, Points: relayPoints(), Interval: time.Second, Timeout: time.Second, Quirks: defQuirks, PTRatio: 1}, "gw", "relay"},
			},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			m, err := Load("testdata/config/good/"+tc.file, LoadOptions{ReadFile: readRepo, Getenv: siteEnv})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if m.Source != "testdata/config/good/"+tc.file {
				t.Errorf("Source %q", m.Source)
			}
			checkModel(t, m, tc.want)
		})
	}
}

func TestInfluxDisabled(t *testing.T) {
	m, err := Load("testdata/config/good/nosink.yaml", LoadOptions{ReadFile: memFS(map[string]string{
		"testdata/config/good/nosink.yaml": "profiles: [relay.yaml]\nlinks: [{id: gw, url: 'tcp://h:502'}]\ndevices: [{id: D, link: gw, unit: 1, profile: relay, feeder: F}]\n",
		"testdata/config/good/relay.yaml":  "name: relay\npoints: [{name: x, table: coil, address: 0, type: bool}]\n",
	})})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.Influx, Influx{Disabled: true}) {
		t.Errorf("Influx %+v, want only Disabled", m.Influx)
	}
}

// TestSecretNeverPrinted formats and logs the model every usual way and
// looks for the token in the output.
func TestSecretNeverPrinted(t *testing.T) {
	m, err := Load("testdata/config/good/site.yaml", LoadOptions{ReadFile: readRepo, Getenv: siteEnv})
	if err != nil {
		t.Fatal(err)
	}
	if m.Influx.Token.Reveal() != testToken {
		t.Fatalf("token not loaded")
	}
	leaks := []string{testToken, "pa55", hex.EncodeToString([]byte(testToken))}
	check := func(t *testing.T, out string) {
		t.Helper()
		for _, l := range leaks {
			if strings.Contains(strings.ToLower(out), strings.ToLower(l)) {
				t.Errorf("output contains %q:\n%s", l, out)
			}
		}
	}
	values := map[string]any{"model": m, "influx": m.Influx, "influx ptr": &m.Influx, "token": m.Influx.Token}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			t.Run(name+" "+verb, func(t *testing.T) {
				check(t, fmt.Sprintf(verb, v))
			})
		}
		t.Run(name+" slog", func(t *testing.T) {
			var buf bytes.Buffer
			slog.New(slog.NewTextHandler(&buf, nil)).Info("loaded", "v", v)
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("loaded", "v", v)
			check(t, buf.String())
		})
	}
	if got := m.Influx.Token.String(); got != "[redacted]" {
		t.Errorf("String() = %q", got)
	}
	if got := NewSecret("").String(); got != "" {
		t.Errorf("empty secret String() = %q", got)
	}
}

func TestLoadReadError(t *testing.T) {
	_, err := Load("testdata/config/good/nope.yaml", LoadOptions{ReadFile: readRepo})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	var errs *Errors
	if errors.As(err, &errs) {
		t.Errorf("a missing config file is not a validation error")
	}
}

func BenchmarkLoad(b *testing.B) {
	files := map[string]string{}
	for _, f := range []string{"testdata/config/good/site.yaml", "testdata/config/profiles/meter.yaml", "testdata/config/profiles/relay.yaml"} {
		data, err := readRepo(f)
		if err != nil {
			b.Fatal(err)
		}
		files[f] = string(data)
	}
	opts := LoadOptions{ReadFile: memFS(files), Getenv: siteEnv}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load("testdata/config/good/site.yaml", opts); err != nil {
			b.Fatal(err)
		}
	}
}
