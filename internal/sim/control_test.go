package sim

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/sim/physics"
	"github.com/feederd/feederd/internal/sim/simtest"
)

// controlRun runs twoFeeders on free ports with a manual clock standing at
// t0, and returns the HTTP base URL and each device's Modbus URL.
func controlRun(t *testing.T) (*ManualClock, string, map[string]string) {
	t.Helper()
	return controlRunWith(t, ControlOptions{})
}

// controlRunWith is controlRun with the API guarded by co.
func controlRunWith(t *testing.T, co ControlOptions) (*ManualClock, string, map[string]string) {
	t.Helper()
	var pairs []string
	for p := 15001; p <= 15008; p++ {
		pairs = append(pairs, fmt.Sprint(p), port(t))
	}
	cfg := loadTestConfig(t, strings.NewReplacer(pairs...).Replace(fmt.Sprintf(twoFeeders, "")))
	clock := NewManualClock(t0)
	opts := DefaultOptions()
	opts.Config = cfg
	opts.Logger = slog.New(slog.DiscardHandler)
	opts.HTTPListen = "127.0.0.1:0"
	opts.Control = co
	opts.Clock = clock
	lines := make(chan Listening, 100)
	opts.OnListen = func(l Listening) { lines <- l }
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
	urls := map[string]string{}
	for {
		select {
		case l := <-lines:
			if l.Device == nil {
				return clock, l.URL, urls
			}
			urls[l.Device.ID] = l.URL
		case err := <-done:
			t.Fatalf("Run ended early: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("no http listener after 10s")
		}
	}
}

// call sends a request and returns the status and body.
func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost || method == http.MethodPut {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && !strings.HasSuffix(url, "/healthz") {
		t.Errorf("%s %s: Content-Type %q", method, url, ct)
	}
	return resp.StatusCode, string(b)
}

// expect checks a call's status and exact body (indented as the API writes
// it).
func expect(t *testing.T, method, url, body string, status int, want string) {
	t.Helper()
	code, got := call(t, method, url, body)
	if code != status || got != want {
		t.Fatalf("%s %s %s\n= %d %s\nwant %d %s", method, url, body, code, got, status, want)
	}
}

func TestControlAPI(t *testing.T) {
	clock, api, urls := controlRun(t)

	expect(t, "GET", api+"/api/clock", "", 200, `{
  "time": "2025-01-15T12:00:00Z",
  "elapsed": "0s",
  "time_scale": 1,
  "paused": false,
  "tick": "1s"
}
`)
	clock.Advance(5 * time.Second)

	// Set a register: Modbus reads the value the API answered, and the
	// physics leaves it alone.
	expect(t, "PUT", api+"/api/devices/F1-BRK/points/van", `{"value": 7000}`, 200, `{
  "device": "F1-BRK",
  "point": "van",
  "value": 7000,
  "pinned": true
}
`)
	brk := simtest.Client(t, urls["F1-BRK"])
	readVan := func() int16 {
		t.Helper()
		r, err := brk.ReadRegister(674, modbus.HOLDING_REGISTER)
		if err != nil {
			t.Fatal(err)
		}
		return int16(r)
	}
	clock.Advance(3 * time.Second)
	if v := readVan(); v != 7000 {
		t.Fatalf("F1-BRK van over modbus = %d after set, want 7000", v)
	}
	var st DeviceState
	getJSON(t, api+"/api/devices/F1-BRK", &st)
	if st.Values["van"] != 7000.0 || len(st.Pinned) != 1 || st.Pinned[0] != "van" || st.Feeder != "F1" || st.Node != "F1-BRK" || st.Kind != "breaker" || !*st.Energized {
		t.Fatalf("F1-BRK state %+v", st)
	}

	// Inject an event: the recloser opens, the meter below it goes dark.
	expect(t, "POST", api+"/api/events", `{"action": "open", "target": "F1-REC"}`, 200, `{
  "action": "open",
  "target": "F1-REC",
  "at": "2025-01-15T12:00:08Z"
}
`)
	clock.Advance(time.Second)
	rec := simtest.Client(t, urls["F1-REC"])
	if c, err := rec.ReadCoil(0); err != nil || c {
		t.Fatalf("F1-REC closed coil = %v (%v), want false", c, err)
	}
	mtr := simtest.Client(t, urls["F1-MTR"])
	var mst DeviceState
	getJSON(t, api+"/api/devices/F1-MTR", &mst)
	van, err := mtr.ReadFloat32(3027, modbus.HOLDING_REGISTER)
	if err != nil || float64(van) != mst.Values["van"] || van != 0 || *mst.Energized {
		t.Fatalf("F1-MTR van = %v (%v) over modbus, %v in the API (energized %v); want 0 in both", van, err, mst.Values["van"], *mst.Energized)
	}
	ia, err := brk.ReadRegister(650, modbus.HOLDING_REGISTER)
	if err != nil {
		t.Fatal(err)
	}

	// Pause: the clock moves, simulated time and the registers do not.
	expect(t, "POST", api+"/api/pause", "", 200, `{
  "time": "2025-01-15T12:00:09Z",
  "elapsed": "9s",
  "time_scale": 1,
  "paused": true,
  "tick": "1s"
}
`)
	clock.Advance(10 * time.Second)
	if ia2, err := brk.ReadRegister(650, modbus.HOLDING_REGISTER); err != nil || ia2 != ia {
		t.Fatalf("F1-BRK ia changed while paused: %d -> %d (%v)", ia, ia2, err)
	}
	expect(t, "POST", api+"/api/resume", "", 200, `{
  "time": "2025-01-15T12:00:09Z",
  "elapsed": "9s",
  "time_scale": 1,
  "paused": false,
  "tick": "1s"
}
`)
	clock.Advance(time.Second)
	var cs ClockState
	getJSON(t, api+"/api/clock", &cs)
	if cs.Elapsed.D() != 10*time.Second || cs.Paused {
		t.Fatalf("clock after resume %+v, want 10s elapsed", cs)
	}

	// Load a scenario: it runs from now.
	expect(t, "POST", api+"/api/scenario", `
seed: 4
events:
  - {after: 2s, action: close, target: F1-REC}
  - {after: 3s, action: fault, target: F1-S2, permanent: true}
`, 200, `{
  "events": 2,
  "start": "2025-01-15T12:00:10Z",
  "time_scale": 1,
  "ignored": [
    "seed"
  ]
}
`)
	clock.Advance(2 * time.Second)
	if c, err := rec.ReadCoil(0); err != nil || !c {
		t.Fatalf("F1-REC closed coil = %v (%v) after the scenario's close, want true", c, err)
	}
	clock.Advance(3 * time.Second)
	trips, err := rec.ReadUint32(101, modbus.HOLDING_REGISTER)
	var rst DeviceState
	getJSON(t, api+"/api/devices/F1-REC", &rst)
	if err != nil || trips != 1 || rst.Values["trips"] != 1.0 || rst.Values["closed"] != 0.0 {
		t.Fatalf("F1-REC trips = %d (%v) over modbus, API %v, closed %v; want 1 trip, open", trips, err, rst.Values["trips"], rst.Values["closed"])
	}

	// Comms events arrive at the client as exceptions.
	expect(t, "POST", api+"/api/events", `{"action": "exception", "target": "F2-BRK", "points": ["van"], "code": 6}`, 200, `{
  "action": "exception",
  "target": "F2-BRK",
  "at": "2025-01-15T12:00:15Z"
}
`)
	f2 := simtest.Client(t, urls["F2-BRK"])
	if _, err := f2.ReadRegister(674, modbus.HOLDING_REGISTER); err != modbus.ErrServerDeviceBusy {
		t.Fatalf("F2-BRK van with an injected exception: %v, want %v", err, modbus.ErrServerDeviceBusy)
	}
	var fst DeviceState
	getJSON(t, api+"/api/devices/F2-BRK", &fst)
	if fst.Comms == nil || fst.Comms.Exceptions["van"] != 6 {
		t.Fatalf("F2-BRK comms %+v", fst.Comms)
	}
	expect(t, "POST", api+"/api/events", `{"action": "comms_restore", "target": "F2-BRK"}`, 200, `{
  "action": "comms_restore",
  "target": "F2-BRK",
  "at": "2025-01-15T12:00:15Z"
}
`)
	if _, err := f2.ReadRegister(674, modbus.HOLDING_REGISTER); err != nil {
		t.Fatalf("F2-BRK van after comms_restore: %v", err)
	}

	// Release the pinned point: the physics drives it again.
	expect(t, "DELETE", api+"/api/devices/F1-BRK/points/van", "", 200, `{
  "device": "F1-BRK",
  "point": "van",
  "pinned": false
}
`)
	clock.Advance(time.Second)
	if v := readVan(); v == 7000 || v < 7000 || v > 7500 {
		t.Fatalf("F1-BRK van = %d after release, want the physics' value near 7200", v)
	}

	var feeders []physics.FeederState
	getJSON(t, api+"/api/feeders", &feeders)
	if len(feeders) != 2 || feeders[0].ID != "F1" || feeders[0].Nodes[2].ID != "F1-REC" || *feeders[0].Nodes[2].Closed || feeders[0].Nodes[2].Trips != 1 || feeders[0].Nodes[3].Faults != 1 {
		t.Fatalf("feeders %+v", feeders)
	}
	code, body := call(t, "GET", api+"/healthz", "")
	if code != 200 || body != "ok\n" {
		t.Fatalf("GET /healthz = %d %q", code, body)
	}
}

func TestControlAPIErrors(t *testing.T) {
	_, api, _ := controlRun(t)
	tests := []struct {
		method, path, body string
		status             int
		err                string
	}{
		{"GET", "/api/devices/NOPE", "", 404, `no device \"NOPE\"`},
		{"PUT", "/api/devices/NOPE/points/van", `{"value": 1}`, 404, `no device \"NOPE\"`},
		{"PUT", "/api/devices/F1-BRK/points/vx", `{"value": 1}`, 404, `device F1-BRK (profile sel751a) has no point \"vx\"`},
		{"PUT", "/api/devices/F1-BRK/points/van", `{"val": 1}`, 400, `decode request body: json: unknown field \"val\"`},
		{"PUT", "/api/devices/F1-BRK/points/van", `{}`, 400, `the body needs \"value\"`},
		{"PUT", "/api/devices/F1-REC/points/model", `{"value": 1}`, 400, `point: model is a string point: set takes numbers`},
		{"POST", "/api/events", `{"action": "open", "target": "F1-S2"}`, 400, `target: F1-S2 is a section on feeder F1: only breakers, reclosers, sectionalizers and switches open and close`},
		{"POST", "/api/events", `{"action": "sag", "target": "F1"}`, 400, `magnitude: sag needs magnitude\nduration: sag needs duration`},
		{"POST", "/api/events", `{"action": "open", "target": "F1-REC", "at": "1s"}`, 400, `at: an injected event happens now or after a delay: use after`},
		{"POST", "/api/events", `{"action": "open"} {}`, 400, `decode request body: more than one JSON value`},
		{"POST", "/api/scenario", "events:\n  - {at: 1s, action: open, target: F9}\n", 400, `scenario:2: events[0].target: no feeder, node or device \"F9\"`},
		{"POST", "/api/scenario", "events:\n  - {at: 1s, action: opn, target: F1-REC}\n", 400, `scenario:2: events[0].action: \"opn\" is not one of fault, clear_fault, sag, swell, open, close, comms_loss, comms_restore, exception, latency, bad_crc, half_open, set, release`},
		{"POST", "/api/scenario", "seed: 3\nevents:\n  - {at: 1s, action: open, target: F1-REC}\n  - {at: 0s, action: close, target: F1-REC}\n", 400, `scenario:4: events[1].at: 0s is before the previous event (1s): events are in time order`},
		{"GET", "/api/nothing", "", 404, `no endpoint GET /api/nothing`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			expect(t, tt.method, api+tt.path, tt.body, tt.status, "{\n  \"error\": \""+tt.err+"\"\n}\n")
		})
	}
}
