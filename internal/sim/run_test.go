package sim

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/sim/simtest"
	"github.com/feederd/feederd/internal/testenv"
)

func port(t *testing.T) string {
	t.Helper()
	_, p, err := net.SplitHostPort(testenv.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startRun runs Run on a config text until the test ends and returns the
// lines OnListen reported.
func startRun(t *testing.T, yaml string) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sim.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path, simtest.Profiles)
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.Config = cfg
	opts.Logger = slog.New(slog.DiscardHandler)
	opts.HTTPListen = "127.0.0.1:0"
	lines := make(chan string, 100)
	opts.OnListen = func(l Listening) { lines <- l.String() }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	var got []string
	for {
		select {
		case l := <-lines:
			got = append(got, l)
			if strings.HasPrefix(l, "serving http on ") {
				return got
			}
		case err := <-done:
			t.Fatalf("Run ended early: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatalf("no http listener after 10s; got %v", got)
		}
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, body)
	}
}

func TestRun(t *testing.T) {
	pty, client2 := testenv.PTYPair(t)
	p1, p2, p3 := port(t), port(t), port(t)
	lines := startRun(t, fmt.Sprintf(`
seed: 3
tick: 1h
profiles: [sel751a.yaml, pm5100.yaml, feeder-rtu.yaml]
devices:
  - {id: F101-BRK, profile: sel751a, unit: 1, port: %s, nominal_voltage: 7200, values: {van: 7210}}
  - {id: F101-MTR, profile: pm5100, unit: 3, gateway: gw1, nominal_voltage: 120}
  - {id: F101-REC, profile: feeder-rtu, unit: 2, gateway: gw1, nominal_voltage: 7200, values: {model: RC10}}
  - {id: BUS-REC, profile: feeder-rtu, unit: 5, serial: bus1, nominal_voltage: 7200}
gateways: [{id: gw1, port: %s, transport: rtuovertcp}]
serial: [{id: bus1, path: %s, baud: 19200, parity: N, data_bits: 8, stop_bits: 1}]
fleets: [{id_prefix: SIM-, count: 1, profile: pm5100, nominal_voltage: 120, base_port: %s}]
`, p1, p2, pty, p3))

	httpURL := strings.TrimPrefix(lines[len(lines)-1], "serving http on ")
	wantLines := []string{
		"serving F101-MTR unit 3 on rtuovertcp://127.0.0.1:" + p2,
		"serving F101-REC unit 2 on rtuovertcp://127.0.0.1:" + p2,
		"serving BUS-REC unit 5 on rtu://" + pty,
		"serving F101-BRK unit 1 on tcp://127.0.0.1:" + p1,
		"serving SIM-001 unit 1 on tcp://127.0.0.1:" + p3,
		"serving http on " + httpURL,
	}
	if !slices.Equal(lines, wantLines) {
		t.Fatalf("listen lines\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
	}

	var states []DeviceState
	getJSON(t, httpURL+"/api/devices", &states)
	byID := map[string]DeviceState{}
	var ids []string
	for _, s := range states {
		byID[s.ID] = s
		ids = append(ids, s.ID)
	}
	if want := []string{"F101-BRK", "F101-MTR", "F101-REC", "BUS-REC", "SIM-001"}; !slices.Equal(ids, want) {
		t.Fatalf("devices %v, want %v", ids, want)
	}
	brk := byID["F101-BRK"]
	if brk.URL != "tcp://127.0.0.1:"+p1 || brk.Unit != 1 || brk.Profile != "sel751a" || brk.Values["van"] != 7210.0 || brk.Values["breaker_closed"] != 1.0 {
		t.Fatalf("F101-BRK state %+v", brk)
	}
	if m := byID["F101-REC"].Values["model"]; m != "RC10" {
		t.Fatalf("F101-REC model %v, want RC10", m)
	}

	// What Modbus clients read equals what the API reports.
	c := simtest.Client(t, brk.URL)
	if err := c.SetUnitId(1); err != nil {
		t.Fatal(err)
	}
	regs, err := c.ReadRegisters(650, 3, modbus.HOLDING_REGISTER)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{"ia", "ib", "ic"} {
		if got := float64(int16(regs[i])); got != brk.Values[p] {
			t.Errorf("F101-BRK %s = %v over modbus, %v in the API", p, got, brk.Values[p])
		}
	}
	mtr := byID["F101-MTR"]
	c = simtest.Client(t, mtr.URL)
	if err := c.SetUnitId(3); err != nil {
		t.Fatal(err)
	}
	van, err := c.ReadFloat32(3027, modbus.HOLDING_REGISTER)
	if err != nil || float64(van) != mtr.Values["van"] {
		t.Errorf("F101-MTR van = %v (%v) over modbus, %v in the API", van, err, mtr.Values["van"])
	}
	bus := byID["BUS-REC"]
	c = simtest.Client(t, "rtu://"+client2)
	if err := c.SetUnitId(5); err != nil {
		t.Fatal(err)
	}
	ia, err := c.ReadRegister(10, modbus.INPUT_REGISTER)
	if err != nil || float64(ia)/10 != bus.Values["ia"] {
		t.Errorf("BUS-REC ia = %v /10 (%v) over rtu, %v in the API", ia, err, bus.Values["ia"])
	}

	var one DeviceState
	getJSON(t, httpURL+"/api/devices/SIM-001", &one)
	if one.ID != "SIM-001" || one.Profile != "pm5100" {
		t.Fatalf("GET /api/devices/SIM-001: %+v", one)
	}
	resp, err := http.Get(httpURL + "/api/devices/NOPE")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /api/devices/NOPE: %s", resp.Status)
	}
	resp, err = http.Get(httpURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Fatalf("GET /healthz: %s %q", resp.Status, body)
	}
}

func TestRunTicks(t *testing.T) {
	lines := startRun(t, fmt.Sprintf(`
tick: 10ms
profiles: [pm5100.yaml]
devices:
  - {id: M, profile: pm5100, unit: 1, port: %s, nominal_voltage: 120}
`, port(t)))
	httpURL := strings.TrimPrefix(lines[len(lines)-1], "serving http on ")
	var first []DeviceState
	getJSON(t, httpURL+"/api/devices", &first)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var now []DeviceState
		getJSON(t, httpURL+"/api/devices", &now)
		if now[0].Values["energy"].(float64) > first[0].Values["energy"].(float64) && now[0].Values["van"] != first[0].Values["van"] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("values did not change in 5s of 10ms ticks: %v", now[0].Values)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunPortBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, busy, _ := net.SplitHostPort(ln.Addr().String())
	free := port(t)
	path := filepath.Join(t.TempDir(), "sim.yaml")
	yaml := fmt.Sprintf(`
profiles: [pm5100.yaml]
devices:
  - {id: A, profile: pm5100, unit: 1, port: %s, nominal_voltage: 120}
  - {id: B, profile: pm5100, unit: 1, port: %s, transport: rtuovertcp, nominal_voltage: 120}
`, free, busy)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path, simtest.Profiles)
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.Config = cfg
	opts.Logger = slog.New(slog.DiscardHandler)
	err = Run(context.Background(), opts)
	want := "start rtusim: listen rtu over tcp on 127.0.0.1:" + busy + ": listen tcp 127.0.0.1:" + busy + ": bind: address already in use"
	if err == nil || err.Error() != want {
		t.Fatalf("Run = %v, want %q", err, want)
	}
	// The first endpoint was released: its port can be bound again.
	l2, err := net.Listen("tcp", "127.0.0.1:"+free)
	if err != nil {
		t.Fatalf("port %s still held after a failed start: %v", free, err)
	}
	l2.Close()
}

func TestRunOptions(t *testing.T) {
	err := Run(context.Background(), Options{})
	want := "start rtusim: no sim config\nno logger\nno clock\nno OnListen callback"
	if err == nil || err.Error() != want {
		t.Fatalf("Run(Options{}) = %q, want %q", err, want)
	}
}

// TestRunTLSAndPTY serves one device over Modbus/TCP Security and one on a
// pseudo-terminal that rtusim creates, and reads both.
func TestRunTLSAndPTY(t *testing.T) {
	ca, sc, sk, cc, ck := testenv.TestPKI(t)
	p := port(t)
	link := filepath.Join(t.TempDir(), "rtu-bus")
	lines := startRun(t, fmt.Sprintf(`
profiles: [pm5100.yaml, sel751a.yaml]
devices:
  - {id: SEC, profile: pm5100, unit: 1, port: %s, transport: tcp+tls, nominal_voltage: 120, values: {van: 121.5}}
  - {id: BUS, profile: sel751a, unit: 4, serial: bus1, nominal_voltage: 7200, values: {van: 7123}}
serial: [{id: bus1, pty: true, path: %s}]
tls: {cert_file: %s, key_file: %s, client_ca_file: %s}
`, p, link, sc, sk, ca))
	want := []string{
		"serving BUS unit 4 on rtu://" + link,
		"serving SEC unit 1 on tcp+tls://127.0.0.1:" + p,
	}
	if !slices.Equal(lines[:2], want) {
		t.Fatalf("listen lines %v, want %v", lines[:2], want)
	}

	cert, err := tls.LoadX509KeyPair(cc, ck)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := modbus.LoadCertPool(ca)
	if err != nil {
		t.Fatal(err)
	}
	c, err := modbus.NewClient(&modbus.ClientConfiguration{
		URL: "tcp+tls://127.0.0.1:" + p, Timeout: time.Second, TLSClientCert: &cert, TLSRootCAs: roots, Logger: log.New(io.Discard, "", 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.ReadFloat32(3027, modbus.HOLDING_REGISTER); err != nil || v != 121.5 {
		t.Fatalf("SEC van over tcp+tls = %v (%v), want 121.5", v, err)
	}

	rc := simtest.Client(t, "rtu://"+link)
	if err := rc.SetUnitId(4); err != nil {
		t.Fatal(err)
	}
	if v, err := rc.ReadRegister(674, modbus.HOLDING_REGISTER); err != nil || v != 7123 {
		t.Fatalf("BUS van over the pty = %v (%v), want 7123", v, err)
	}
}
