package poll

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// stepLink builds the one link of m, connected, for a test that polls its
// first device itself with l.poll. The device's schedule has a one-hour
// interval, so poll number n (from 0) is for slot n whatever the wall clock
// does.
func stepLink(t testing.TB, m *config.Model, sink Sink, reg prometheus.Registerer) *link {
	t.Helper()
	p, err := New(Options{Model: m, Sink: sink, Logger: quietLogger(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	l := p.links[0]
	l.sched = newSchedule(time.Now(), []time.Duration{time.Hour}, false)
	l.timer = time.NewTimer(time.Hour)
	l.timer.Stop()
	l.downErr = errors.New("not connected")
	if !l.connect(context.Background()) || !l.open {
		t.Fatalf("connect: %v", l.downErr)
	}
	t.Cleanup(l.close)
	return l
}

func TestStaleQuality(t *testing.T) {
	// Three points in three requests, sent in plan order: coil c0, holding
	// h0, input i0. Samples come in point order: h0, i0, c0.
	pts := []profile.Point{
		{Name: "h0", RegType: profile.Holding, Address: 0, Type: profile.Uint16},
		{Name: "i0", RegType: profile.Input, Address: 0, Type: profile.Uint16},
		{Name: "c0", RegType: profile.Coil, Address: 0, Type: profile.Bool},
	}
	good := [3]float64{7, 8, 1}
	const (
		G = sample.Good
		E = sample.Exception
		T = sample.Timeout
		S = sample.Stale
	)
	// A step sets up the device (and the link) before its poll; every step
	// starts from a device that answers everything at once.
	type step struct {
		name string
		do   func(l *link, im *image)
		want [3]sample.Quality // h0, i0, c0
	}
	answer := func(*link, *image) {}
	unreachable := func(_ *link, im *image) { im.fail[profile.Coil] = modbus.ErrGWTargetFailedToRespond }
	pathUnavailable := func(_ *link, im *image) { im.fail[profile.Coil] = modbus.ErrGWPathUnavailable }
	refuse := func(table profile.RegType) func(*link, *image) {
		return func(_ *link, im *image) { im.fail[table] = modbus.ErrIllegalDataAddress }
	}
	// The client waits 100 ms: the input registers time out, the single
	// device's link closes, and stays closed until a step reconnects it.
	hangInput := func(_ *link, im *image) { im.hang[profile.Input] = 300 * time.Millisecond }
	reconnect := func(l *link, _ *image) {
		if !l.connect(context.Background()) || !l.open {
			t.Fatalf("reconnect: %v", l.downErr)
		}
	}
	for _, tc := range []struct {
		name       string
		staleAfter int
		steps      []step
	}{
		{"stale_after 3", 3, []step{
			{"all good", answer, [3]sample.Quality{G, G, G}},
			{"exception on h0", refuse(profile.Holding), [3]sample.Quality{E, G, G}},
			{"gateway: target failed to respond", unreachable, [3]sample.Quality{T, T, T}},
			{"gateway again: h0 good 3 slots ago", unreachable, [3]sample.Quality{S, T, T}},
			{"gateway: path unavailable", pathUnavailable, [3]sample.Quality{S, S, S}},
			{"good again, exception on i0", refuse(profile.Input), [3]sample.Quality{G, E, G}},
			{"i0 times out: its good value is 5 slots old", hangInput, [3]sample.Quality{G, S, G}},
			{"link down", answer, [3]sample.Quality{T, S, T}},
			{"link down again", answer, [3]sample.Quality{T, S, T}},
			{"link down, 3 slots after h0 and c0 were good", answer, [3]sample.Quality{S, S, S}},
			{"reconnected, all good", reconnect, [3]sample.Quality{G, G, G}},
			{"gateway: a good value resets the age", unreachable, [3]sample.Quality{T, T, T}},
		}},
		{"stale_after 1", 1, []step{
			{"gateway in the first slot", unreachable, [3]sample.Quality{T, T, T}},
			{"gateway in the second slot", unreachable, [3]sample.Quality{S, S, S}},
			{"all good", answer, [3]sample.Quality{G, G, G}},
			{"gateway", unreachable, [3]sample.Quality{S, S, S}},
		}},
		{"c0 never good, stale_after 3", 3, []step{
			{"gateway in slot 0", unreachable, [3]sample.Quality{T, T, T}},
			{"exception on c0", refuse(profile.Coil), [3]sample.Quality{G, G, E}},
			{"gateway in slot 2", unreachable, [3]sample.Quality{T, T, T}},
			{"gateway in slot 3: c0 is stale", unreachable, [3]sample.Quality{T, T, S}},
			{"exception on c0 again", refuse(profile.Coil), [3]sample.Quality{G, G, E}},
			{"c0 good at last, i0 times out one slot after it was good", hangInput, [3]sample.Quality{G, T, G}},
			{"link down", answer, [3]sample.Quality{T, T, T}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := newImage(1)
			for i, p := range pts {
				im.put(p, good[i])
			}
			dev := testDevice("D", 1, time.Hour, pts...)
			m := testModel(testLink("L", serve(t, im), 100*time.Millisecond, dev))
			m.Poll.StaleAfter = tc.staleAfter
			sink := newCollector()
			l := stepLink(t, m, sink, prometheus.NewRegistry())
			for k, st := range tc.steps {
				im.mu.Lock()
				clear(im.fail)
				clear(im.hang)
				st.do(l, im)
				im.mu.Unlock()
				if !l.poll(context.Background(), 0) {
					t.Fatalf("slot %d (%s): poll reported ctx done", k, st.name)
				}
				polls := sink.of(0)
				if len(polls) != k+1 {
					t.Fatalf("slot %d (%s): %d polls in the sink, want %d", k, st.name, len(polls), k+1)
				}
				poll := polls[k]
				want := make([]pv, 0, 4)
				up := 0.0
				for i, q := range st.want {
					v := 0.0
					if q == sample.Good {
						v, up = good[i], 1
					}
					want = append(want, pv{uint16(i), v, q, 0})
				}
				want = append(want, pv{sample.NoPoint, up, sample.Good, sample.DeviceStatus | sample.EndOfPoll})
				if g := values(poll); !slices.Equal(g, want) {
					t.Errorf("slot %d (%s):\n got %v\nwant %v", k, st.name, g, want)
				}
				if poll[0].Seq != uint32(k+1) {
					t.Errorf("slot %d (%s): seq %d, want %d", k, st.name, poll[0].Seq, k+1)
				}
			}
		})
	}
}

func TestGatewayUnreachableUnit(t *testing.T) {
	// The gateway answers every request for unit 2 with "target device
	// failed to respond", after 30 ms of its own waiting. Each unit has
	// three requests per poll.
	pts := []profile.Point{
		{Name: "h0", RegType: profile.Holding, Address: 0, Type: profile.Uint16},
		{Name: "i0", RegType: profile.Input, Address: 0, Type: profile.Uint16},
		{Name: "c0", RegType: profile.Coil, Address: 0, Type: profile.Bool},
	}
	live, dead := newImage(1), newImage(2)
	for i, v := range []float64{7, 8, 1} {
		live.put(pts[i], v)
	}
	dead.setDelay(30 * time.Millisecond)
	for _, table := range []profile.RegType{profile.Coil, profile.Holding, profile.Input} {
		dead.fail[table] = modbus.ErrGWTargetFailedToRespond
	}
	a := testDevice("A", 1, 100*time.Millisecond, pts...)
	b := testDevice("B", 2, 100*time.Millisecond, pts...)
	m := testModel(testLink("GW", serveHandler(t, gateway{1: live, 2: dead}), time.Second, a, b))
	sink := newCollector()
	reg := prometheus.NewRegistry()
	p, stop := start(t, m, sink, reg, nil)
	sink.waitFor(t, 1, "6 polls of B", func(p [][]sample.Sample) bool { return len(p) >= 6 })
	connected := value(t, reg, "feederd_link_connected", "link", "GW")
	stop()

	pa, pb := sink.of(0), sink.of(1)
	for _, poll := range pa {
		w := []pv{{0, 7, sample.Good, 0}, {1, 8, sample.Good, 0}, {2, 1, sample.Good, 0}, {sample.NoPoint, 1, sample.Good, 3}}
		if g := values(poll); !slices.Equal(g, w) {
			t.Errorf("A, poll seq %d: got %v, want %v", poll[0].Seq, g, w)
		}
	}
	for _, poll := range pb {
		q := lost(poll[0].Seq)
		w := []pv{{0, 0, q, 0}, {1, 0, q, 0}, {2, 0, q, 0}, {sample.NoPoint, 0, sample.Good, 3}}
		if g := values(poll); !slices.Equal(g, w) {
			t.Errorf("B, poll seq %d: got %v, want %v", poll[0].Seq, g, w)
		}
	}
	// One request per poll of B: its first, the coils; the rest of its
	// plan is not sent.
	reqs := dead.requests()
	if len(reqs) != len(pb) {
		t.Errorf("unit 2 got %d requests in %d polls, want one per poll", len(reqs), len(pb))
	}
	for i, r := range reqs {
		if r.table != profile.Coil {
			t.Errorf("request %d to unit 2 is for %v, want coils", i, r.table)
		}
	}
	nb := float64(len(pb))
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"feederd_reconnects_total", []string{"link", "GW"}, 0},
		{"feederd_device_up", []string{"device", "A"}, 1},
		{"feederd_device_up", []string{"device", "B"}, 0},
		{"feederd_requests_total", []string{"function", "read_coils", "result", "timeout"}, nb},
		{"feederd_requests_total", []string{"function", "read_holding_registers", "result", "timeout"}, 0},
		{"feederd_requests_total", []string{"function", "read_input_registers", "result", "timeout"}, 0},
		{"feederd_requests_total", []string{"function", "read_coils", "result", "exception"}, 0},
		{"feederd_requests_total", []string{"function", "read_coils", "result", "error"}, 0},
		{"feederd_polls_total", []string{"link", "GW", "result", "success"}, float64(len(pa))},
		{"feederd_polls_total", []string{"link", "GW", "result", "partial"}, 0},
		{"feederd_polls_total", []string{"link", "GW", "result", "failure"}, nb},
	} {
		if got := value(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if connected != 1 {
		t.Errorf("link_connected while polling = %v, want 1", connected)
	}
	checkSharedLink(t, p, append(live.requests(), reqs...), len(pb),
		"read coils 0..0 on B: gateway target device failed to respond")
}
