package poll

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
	"github.com/feederd/feederd/internal/sim/devsrv"
	"github.com/feederd/feederd/internal/testenv"
)

func TestHeard(t *testing.T) {
	// Each step is a unit that answered (+u) or a timeout of unit u (-u),
	// with whether the timeout keeps the link; a kept timeout starts a new
	// window, a link failure starts a new connection.
	type step struct {
		answered bool
		unit     uint8
		keep     bool
	}
	ok := func(u uint8) step { return step{answered: true, unit: u} }
	timeout := func(u uint8, keep bool) step { return step{unit: u, keep: keep} }
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"nothing heard since connect", []step{timeout(1, false)}},
		{"single device: its own answer does not count", []step{ok(1), ok(1), timeout(1, false)}},
		{"another unit answered", []step{ok(1), timeout(2, true)}},
		{"an answer counts once: the next timeout closes", []step{ok(1), timeout(2, true), timeout(2, false)}},
		{"two dead units back to back close the link", []step{ok(1), timeout(2, true), timeout(3, false)}},
		{"live unit between dead ones keeps the link", []step{ok(1), timeout(2, true), ok(1), timeout(3, true), ok(1), timeout(2, true)}},
		{"the timing-out unit's earlier answer does not count", []step{ok(2), ok(2), timeout(2, false)}},
		{"several units heard, one of them times out", []step{ok(1), ok(2), timeout(2, true)}},
		{"dead connection: every unit times out", []step{ok(1), ok(2), timeout(1, true), timeout(2, false)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h heard
			for i, s := range tc.steps {
				if s.answered {
					h.add(s.unit)
					continue
				}
				if got := h.other(s.unit); got != s.keep {
					t.Fatalf("step %d, timeout of unit %d: keep = %v, want %v", i, s.unit, got, s.keep)
				}
				h = heard{} // a kept timeout and a reconnect both start over
			}
		})
	}
}

// gateway is a Modbus TCP gateway in front of several images, by unit ID.
// Each request waits for its own image's delay; the library's server takes
// one request at a time per connection, so a slow unit also delays the
// requests queued behind it, as on a gateway to a serial bus.
type gateway map[uint8]*image

func (g gateway) unit(id uint8) (*image, error) {
	if im := g[id]; im != nil {
		return im, nil
	}
	return nil, modbus.ErrGWTargetFailedToRespond
}

func (g gateway) HandleCoils(req *modbus.CoilsRequest) ([]bool, error) {
	im, err := g.unit(req.UnitId)
	if err != nil {
		return nil, err
	}
	return im.HandleCoils(req)
}

func (g gateway) HandleDiscreteInputs(req *modbus.DiscreteInputsRequest) ([]bool, error) {
	im, err := g.unit(req.UnitId)
	if err != nil {
		return nil, err
	}
	return im.HandleDiscreteInputs(req)
}

func (g gateway) HandleHoldingRegisters(req *modbus.HoldingRegistersRequest) ([]uint16, error) {
	im, err := g.unit(req.UnitId)
	if err != nil {
		return nil, err
	}
	return im.HandleHoldingRegisters(req)
}

func (g gateway) HandleInputRegisters(req *modbus.InputRegistersRequest) ([]uint16, error) {
	im, err := g.unit(req.UnitId)
	if err != nil {
		return nil, err
	}
	return im.HandleInputRegisters(req)
}

func TestGatewayDeadUnitKeepsLink(t *testing.T) {
	// Unit 1 answers at once. Unit 2 answers 400 ms late, after the 300 ms
	// timeout: its late response reaches the client during unit 1's next
	// request, which drops it by its transaction ID, and unit 1's answer
	// comes at most 100 ms after it was asked for.
	pt := profile.Point{Name: "v", RegType: profile.Holding, Address: 10, Type: profile.Int16}
	live, dead := newImage(1), newImage(2)
	live.put(pt, -7)
	dead.put(pt, 9)
	dead.setDelay(400 * time.Millisecond)
	// The dead unit's poll outlasts the live unit's interval, so the live
	// unit is always polled between two polls of the dead one.
	a := testDevice("A", 1, 100*time.Millisecond, pt)
	b := testDevice("B", 2, 100*time.Millisecond, pt)
	m := testModel(testLink("GW", serveHandler(t, gateway{1: live, 2: dead}), 300*time.Millisecond, a, b))
	sink := newCollector()
	reg := prometheus.NewRegistry()
	p, stop := start(t, m, sink, reg, nil)
	sink.waitFor(t, 1, "4 polls of B", func(p [][]sample.Sample) bool { return len(p) >= 4 })
	connected := value(t, reg, "feederd_link_connected", "link", "GW")
	stop()

	pa, pb := sink.of(0), sink.of(1)
	for _, poll := range pa {
		if g, w := values(poll), []pv{{0, -7, sample.Good, 0}, {sample.NoPoint, 1, sample.Good, 3}}; !slices.Equal(g, w) {
			t.Errorf("A, poll seq %d: got %v, want %v", poll[0].Seq, g, w)
		}
	}
	for _, poll := range pb {
		if g, w := values(poll), []pv{{0, 0, lost(poll[0].Seq), 0}, {sample.NoPoint, 0, sample.Good, 3}}; !slices.Equal(g, w) {
			t.Errorf("B, poll seq %d: got %v, want %v", poll[0].Seq, g, w)
		}
	}
	if len(pa) < len(pb) {
		t.Errorf("A was polled %d times, B %d times: want A at least as often", len(pa), len(pb))
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"feederd_reconnects_total", []string{"link", "GW"}, 0},
		{"feederd_device_up", []string{"device", "A"}, 1},
		{"feederd_device_up", []string{"device", "B"}, 0},
		{"feederd_requests_total", []string{"function", "read_holding_registers", "result", "ok"}, float64(len(pa))},
		{"feederd_requests_total", []string{"function", "read_holding_registers", "result", "timeout"}, float64(len(pb))},
		{"feederd_polls_total", []string{"link", "GW", "result", "success"}, float64(len(pa))},
		{"feederd_polls_total", []string{"link", "GW", "result", "failure"}, float64(len(pb))},
	} {
		if got := value(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if connected != 1 {
		t.Errorf("link_connected while polling = %v, want 1", connected)
	}
	checkSharedLink(t, p, append(live.requests(), dead.requests()...), len(pb),
		"read holding registers 10..10 on B: request timed out")
}

// checkSharedLink checks that every request came over one connection, that
// device A of the link is up and that device B is down after failures
// polls with lastErr.
func checkSharedLink(t *testing.T, p *Poller, reqs []served, failures int, lastErr string) {
	t.Helper()
	clients := map[string]bool{}
	for _, r := range reqs {
		clients[r.client] = true
	}
	if len(clients) != 1 {
		t.Errorf("requests came over %d connections, want 1", len(clients))
	}
	st := p.Status()
	if !st[0].Up || st[0].LastError != "" {
		t.Errorf("status of A = %+v", st[0])
	}
	if st[1].Up || st[1].ConsecutiveFailures != failures || st[1].LastError != lastErr {
		t.Errorf("status of B = %+v", st[1])
	}
}

// busProfile is the register map of the units on the RTU bus.
var busProfile = &profile.Profile{Name: "bus-relay", Points: []profile.Point{
	{Name: "vb", RegType: profile.Holding, Address: 100, Type: profile.Float32, Order: profile.CDAB, Unit: "V"},
	{Name: "ia", RegType: profile.Holding, Address: 110, Type: profile.Int16, Scale: 0.25, Offset: 1, Unit: "A"},
	{Name: "breaker", RegType: profile.Holding, Address: 120, Type: profile.Bit, BitPos: 3},
	{Name: "lockout", RegType: profile.Holding, Address: 120, Type: profile.Bit, BitPos: 4},
	{Name: "closed", RegType: profile.Coil, Address: 5, Type: profile.Bool},
	{Name: "alarm", RegType: profile.DiscreteInput, Address: 10, Type: profile.Bool},
	{Name: "freq", RegType: profile.Input, Address: 202, Type: profile.Uint16, Scale: 0.5, Unit: "Hz"},
}}

// busUnits builds units 1 and 2 of busProfile with the values given in
// point order.
func busUnits(t *testing.T, vals map[uint8][]float64) *devsrv.Units {
	t.Helper()
	var devs []*devsrv.Device
	for _, unit := range []uint8{1, 2} {
		d, err := devsrv.NewDevice(fmt.Sprintf("sim-%d", unit), unit, busProfile)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range busProfile.Points {
			if err := d.SetValue(p.Name, vals[unit][i]); err != nil {
				t.Fatal(err)
			}
		}
		devs = append(devs, d)
	}
	u, err := devsrv.NewUnits(devs...)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// serveEndpoint serves e until the test ends.
func serveEndpoint(t *testing.T, e *devsrv.Endpoint) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve %s: %v", e.URL, err)
		}
	})
}

func TestRTUBusEndToEnd(t *testing.T) {
	vals := map[uint8][]float64{
		1: {231.25, -29.75, 1, 0, 1, 0, 50},
		2: {-118.5, 41, 0, 1, 0, 1, 60.5},
	}
	want := func(unit uint8) []pv {
		var out []pv
		for i, v := range vals[unit] {
			out = append(out, pv{uint16(i), v, sample.Good, 0})
		}
		return append(out, pv{sample.NoPoint, 1, sample.Good, sample.DeviceStatus | sample.EndOfPoll})
	}
	dead := func(seq uint32) []pv {
		q := lost(seq)
		return []pv{
			{0, 0, q, 0}, {1, 0, q, 0}, {2, 0, q, 0}, {3, 0, q, 0}, {4, 0, q, 0}, {5, 0, q, 0}, {6, 0, q, 0},
			{sample.NoPoint, 0, sample.Good, sample.DeviceStatus | sample.EndOfPoll},
		}
	}
	for _, tc := range []struct {
		name string
		// bus serves units on a fresh endpoint and returns the link that
		// reaches it.
		bus func(t *testing.T, u *devsrv.Units) *config.Link
	}{
		{"rtu over a PTY pair", ptyBus},
		{"rtuovertcp", rtuOverTCPBus(false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.bus(t, busUnits(t, vals))
			// Unit 3 is configured but nobody answers for it. Its poll
			// (one 250 ms timeout) outlasts the others' interval, so
			// units 1 and 2 are polled between two polls of unit 3.
			devs := []*config.Device{
				testDevice("U1", 1, 100*time.Millisecond, busProfile.Points...),
				testDevice("U2", 2, 100*time.Millisecond, busProfile.Points...),
				testDevice("U3", 3, 100*time.Millisecond, busProfile.Points...),
			}
			tl := testLink("BUS", l.URL, 250*time.Millisecond, devs...)
			tl.Scheme, tl.Serial = l.Scheme, l.Serial
			sink := newCollector()
			reg := prometheus.NewRegistry()
			p, stop := start(t, testModel(tl), sink, reg, nil)
			sink.waitFor(t, 2, "3 polls of unit 3", func(p [][]sample.Sample) bool { return len(p) >= 3 })
			stop()

			var polls [3][][]sample.Sample
			for i := range polls {
				polls[i] = sink.of(uint32(i))
			}
			for i, w := range []func(seq uint32) []pv{
				func(uint32) []pv { return want(1) }, func(uint32) []pv { return want(2) }, dead,
			} {
				if len(polls[i]) < 3 {
					t.Errorf("unit %d was polled %d times, want >= 3", i+1, len(polls[i]))
				}
				for _, poll := range polls[i] {
					if g, w := values(poll), w(poll[0].Seq); !slices.Equal(g, w) {
						t.Errorf("unit %d, poll seq %d:\n got %v\nwant %v", i+1, poll[0].Seq, g, w)
					}
				}
			}
			n1, n2, n3 := float64(len(polls[0])), float64(len(polls[1])), float64(len(polls[2]))
			// A poll cut short by the stop is dropped after the requests
			// it sent: one more ok than polls is allowed, on the one link.
			for _, c := range []struct {
				name     string
				labels   []string
				min, max float64
			}{
				{"feederd_reconnects_total", []string{"link", "BUS"}, 0, 0},
				{"feederd_device_up", []string{"device", "U1"}, 1, 1},
				{"feederd_device_up", []string{"device", "U2"}, 1, 1},
				{"feederd_device_up", []string{"device", "U3"}, 0, 0},
				// Unit 3's first request (coils) times out and the rest
				// of its plan is not sent.
				{"feederd_requests_total", []string{"function", "read_coils", "result", "timeout"}, n3, n3},
				{"feederd_requests_total", []string{"function", "read_discrete_inputs", "result", "timeout"}, 0, 0},
				{"feederd_requests_total", []string{"function", "read_holding_registers", "result", "timeout"}, 0, 0},
				{"feederd_requests_total", []string{"function", "read_input_registers", "result", "timeout"}, 0, 0},
				{"feederd_requests_total", []string{"function", "read_coils", "result", "ok"}, n1 + n2, n1 + n2 + 1},
				{"feederd_requests_total", []string{"function", "read_holding_registers", "result", "ok"}, n1 + n2, n1 + n2 + 1},
				{"feederd_requests_total", []string{"function", "read_input_registers", "result", "ok"}, n1 + n2, n1 + n2 + 1},
				{"feederd_requests_total", []string{"function", "read_input_registers", "result", "error"}, 0, 0},
			} {
				if got := value(t, reg, c.name, c.labels...); got < c.min || got > c.max {
					t.Errorf("%s%v = %v, want %v..%v", c.name, c.labels, got, c.min, c.max)
				}
			}
			st := p.Status()
			if st[2].Up || st[2].LastError != "read coils 5..5 on U3: request timed out" {
				t.Errorf("status of U3 = %+v", st[2])
			}
		})
	}
}

// ptyBus serves units on the far end of a socat PTY pair, as an RTU
// serial bus at 19200 8N1, and returns the link to the near end.
func ptyBus(t *testing.T, u *devsrv.Units) *config.Link {
	simEnd, ourEnd := testenv.PTYPair(t)
	e, err := devsrv.OpenSerialBus(devsrv.SerialConfig{Path: simEnd, Baud: 19200, DataBits: 8, Parity: "N", StopBits: 1}, u, devsrv.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serveEndpoint(t, e)
	return &config.Link{
		URL: "rtu://" + ourEnd, Scheme: config.SchemeRTU,
		Serial: &config.Serial{Baud: 19200, DataBits: 8, Parity: "N", StopBits: 1},
	}
}

// rtuOverTCPBus serves units over RTU over TCP and returns the link to it;
// gateway makes the endpoint a gateway even for a single device (faults
// then silence one unit, not the port).
func rtuOverTCPBus(gateway bool) func(t *testing.T, u *devsrv.Units) *config.Link {
	return func(t *testing.T, u *devsrv.Units) *config.Link {
		e, err := devsrv.ListenRTUOverTCP("127.0.0.1:0", u, devsrv.ServerOptions{Gateway: gateway})
		if err != nil {
			t.Fatal(err)
		}
		serveEndpoint(t, e)
		return &config.Link{URL: e.URL, Scheme: config.SchemeRTUOverTCP, Serial: &config.Serial{Baud: 19200}}
	}
}
