package poll

import (
	"context"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// put encodes v for p into the image.
func (im *image) put(p profile.Point, v float64) {
	im.mu.Lock()
	defer im.mu.Unlock()
	switch p.RegType {
	case profile.Coil:
		im.coils[p.Address] = v != 0
		return
	case profile.DiscreteInput:
		im.discrete[p.Address] = v != 0
		return
	}
	m := im.holding
	if p.RegType == profile.Input {
		m = im.input
	}
	dst := regs(m, p.Address, uint16(p.Words()))
	p.Encode(v, dst)
	for i, w := range dst {
		m[p.Address+uint16(i)] = w
	}
}

func (im *image) putString(p profile.Point, s string) {
	im.mu.Lock()
	defer im.mu.Unlock()
	dst := make([]uint16, p.Words())
	p.EncodeString(s, dst)
	for i, w := range dst {
		im.holding[p.Address+uint16(i)] = w
	}
}

var e2ePoints = []profile.Point{
	{Name: "va", RegType: profile.Holding, Address: 100, Type: profile.Float32, Order: profile.ABCD, Unit: "V"},
	{Name: "vb", RegType: profile.Holding, Address: 102, Type: profile.Float32, Order: profile.CDAB, Unit: "V"},
	{Name: "ia", RegType: profile.Holding, Address: 110, Type: profile.Int16, Scale: 0.25, Offset: 1, Unit: "A"},
	{Name: "breaker", RegType: profile.Holding, Address: 120, Type: profile.Bit, BitPos: 3},
	{Name: "lockout", RegType: profile.Holding, Address: 120, Type: profile.Bit, BitPos: 4},
	{Name: "coil5", RegType: profile.Coil, Address: 5, Type: profile.Bool},
	{Name: "coil6", RegType: profile.Coil, Address: 6, Type: profile.Bool},
	{Name: "di10", RegType: profile.DiscreteInput, Address: 10, Type: profile.Bool},
	{Name: "pf", RegType: profile.Input, Address: 200, Type: profile.Float32},
	{Name: "serial", RegType: profile.Holding, Address: 300, Type: profile.String, Length: 4},
	{Name: "freq", RegType: profile.Input, Address: 202, Type: profile.Uint16, Scale: 0.5, Unit: "Hz"},
}

func e2eImage(unit uint8) *image {
	im := newImage(unit)
	p := e2ePoints
	im.put(p[0], 230.5)
	im.put(p[1], 231.25)
	im.put(p[2], -29.75) // raw -123
	im.put(p[3], 1)
	im.put(p[4], 0)
	im.put(p[5], 1)
	im.put(p[6], 0)
	im.put(p[7], 1)
	im.put(p[8], math.NaN())
	im.putString(p[9], "AB12")
	im.put(p[10], 50)
	return im
}

type pv struct {
	Point   uint16
	Value   float64
	Quality sample.Quality
	Flags   uint8
}

func values(poll []sample.Sample) []pv {
	out := make([]pv, len(poll))
	for i, s := range poll {
		out[i] = pv{s.Point, s.Value, s.Quality, s.Flags}
	}
	return out
}

func TestPollDecodesEndToEnd(t *testing.T) {
	im := e2eImage(7)
	dev := testDevice("F101-R1", 7, time.Hour, e2ePoints...)
	m := testModel(testLink("L1", serve(t, im), time.Second, dev))
	sink := newCollector()
	reg := prometheus.NewRegistry()
	before := time.Now()
	_, stop := start(t, m, sink, reg, nil)
	polls := sink.waitFor(t, 0, "one poll", func(p [][]sample.Sample) bool { return len(p) >= 1 })
	stop()
	after := time.Now()

	got := polls[0]
	want := []pv{
		{0, 230.5, sample.Good, 0},
		{1, 231.25, sample.Good, 0},
		{2, -29.75, sample.Good, 0},
		{3, 1, sample.Good, 0},
		{4, 0, sample.Good, 0},
		{5, 1, sample.Good, 0},
		{6, 0, sample.Good, 0},
		{7, 1, sample.Good, 0},
		{8, 0, sample.Invalid, 0},
		{10, 50, sample.Good, 0},
		{sample.NoPoint, 1, sample.Good, sample.DeviceStatus | sample.EndOfPoll},
	}
	if g := values(got); !slices.Equal(g, want) {
		t.Errorf("samples:\n got %v\nwant %v", g, want)
	}
	for _, s := range got {
		if s.Device != 0 || s.Seq != 1 || s.Time < before.UnixNano() || s.Time > after.UnixNano() {
			t.Errorf("sample %+v: want device 0, seq 1, time within the poll", s)
		}
	}
	// One request per table run: coils 5..6, discrete 10, holding 100..120, 300..303, input 200..202.
	var reqs []string
	for _, r := range im.requests() {
		reqs = append(reqs, Request{Table: r.table, Start: r.addr, Count: r.count}.String())
	}
	wantReqs := []string{
		"read coils 5..6", "read discrete inputs 10..10", "read holding registers 100..120",
		"read holding registers 300..303", "read input registers 200..202",
	}
	if !slices.Equal(reqs, wantReqs) {
		t.Errorf("requests served: %q, want %q", reqs, wantReqs)
	}
	if n := value(t, reg, "feederd_polls_total", "link", "L1", "result", "success"); n != 1 {
		t.Errorf("polls_total{success} = %v, want 1", n)
	}
	if n := value(t, reg, "feederd_requests_total", "function", "read_holding_registers", "result", "ok"); n != 2 {
		t.Errorf("requests_total{read_holding_registers,ok} = %v, want 2", n)
	}
}

// value returns the value of the one series of a counter or gauge in reg
// that has the labels.
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metric
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func TestUnitIDPerDevice(t *testing.T) {
	// Two devices behind one gateway: the image answers only unit 3, so
	// unit 4's request gets a gateway exception, which marks its points
	// Timeout.
	im := newImage(3)
	pt := profile.Point{Name: "v", RegType: profile.Holding, Address: 0, Type: profile.Uint16}
	im.put(pt, 42)
	a := testDevice("A", 3, 100*time.Millisecond, pt)
	b := testDevice("B", 4, 100*time.Millisecond, pt)
	m := testModel(testLink("GW", serve(t, im), time.Second, a, b))
	sink := newCollector()
	start(t, m, sink, prometheus.NewRegistry(), nil)
	pa := sink.waitFor(t, 0, "a poll of A", func(p [][]sample.Sample) bool { return len(p) >= 1 })
	pb := sink.waitFor(t, 1, "a poll of B", func(p [][]sample.Sample) bool { return len(p) >= 1 })
	if g, w := values(pa[0]), []pv{{0, 42, sample.Good, 0}, {sample.NoPoint, 1, sample.Good, 3}}; !slices.Equal(g, w) {
		t.Errorf("A: got %v, want %v", g, w)
	}
	if g, w := values(pb[0]), []pv{{0, 0, sample.Timeout, 0}, {sample.NoPoint, 0, sample.Good, 3}}; !slices.Equal(g, w) {
		t.Errorf("B: got %v, want %v", g, w)
	}
}

func TestExceptionSparesOtherRequestsAndLink(t *testing.T) {
	im := newImage(1)
	pts := []profile.Point{
		{Name: "h0", RegType: profile.Holding, Address: 0, Type: profile.Uint16},
		{Name: "i0", RegType: profile.Input, Address: 0, Type: profile.Uint16},
		{Name: "c0", RegType: profile.Coil, Address: 0, Type: profile.Bool},
	}
	im.put(pts[0], 7)
	im.put(pts[2], 1)
	im.fail[profile.Input] = modbus.ErrIllegalDataAddress
	dev := testDevice("D", 1, 50*time.Millisecond, pts...)
	m := testModel(testLink("L", serve(t, im), time.Second, dev))
	sink := newCollector()
	reg := prometheus.NewRegistry()
	p, stop := start(t, m, sink, reg, nil)
	polls := sink.waitFor(t, 0, "3 polls", func(p [][]sample.Sample) bool { return len(p) >= 3 })
	stop()

	want := []pv{{0, 7, sample.Good, 0}, {1, 0, sample.Exception, 0}, {2, 1, sample.Good, 0}, {sample.NoPoint, 1, sample.Good, 3}}
	for i, poll := range polls {
		if g := values(poll); !slices.Equal(g, want) {
			t.Errorf("poll %d: got %v, want %v", i, g, want)
		}
	}
	if n := value(t, reg, "feederd_reconnects_total", "link", "L"); n != 0 {
		t.Errorf("reconnects = %v, want 0", n)
	}
	n := float64(len(polls))
	for _, c := range []struct {
		fn, result string
		min        float64
	}{
		{"read_holding_registers", "ok", n},
		{"read_input_registers", "exception", n},
		{"read_coils", "ok", n},
		{"read_input_registers", "timeout", 0},
	} {
		got := value(t, reg, "feederd_requests_total", "function", c.fn, "result", c.result)
		if got < c.min || (c.min == 0 && got != 0) {
			t.Errorf("requests_total{%s,%s} = %v, want >= %v", c.fn, c.result, got, c.min)
		}
	}
	if got := value(t, reg, "feederd_polls_total", "link", "L", "result", "partial"); got < n {
		t.Errorf("polls_total{partial} = %v, want >= %v", got, n)
	}
	clients := map[string]bool{}
	for _, r := range im.requests() {
		clients[r.client] = true
	}
	if len(clients) != 1 {
		t.Errorf("requests came over %d connections, want 1", len(clients))
	}
	st := p.Status()[0]
	if !st.Up || st.ConsecutiveFailures != 0 || st.LastError != "read input registers 0..0 on D: illegal data address" {
		t.Errorf("status = %+v", st)
	}
}

func TestTimeoutReconnectsWithBackoff(t *testing.T) {
	im := newImage(1)
	pt := profile.Point{Name: "v", RegType: profile.Holding, Address: 10, Type: profile.Int16}
	im.put(pt, -5)
	im.setDelay(300 * time.Millisecond)
	dev := testDevice("D", 1, 50*time.Millisecond, pt)
	l := testLink("L", serve(t, im), 100*time.Millisecond, dev)
	l.BackoffInitial, l.BackoffMax = 200*time.Millisecond, 400*time.Millisecond
	m := testModel(l)
	sink := newCollector()
	reg := prometheus.NewRegistry()
	// rand 0 makes every delay the lower bound: 100 ms, then 200 ms.
	p, _ := start(t, m, sink, reg, func() float64 { return 0 })

	polls := sink.waitFor(t, 0, "a timed out poll", func(p [][]sample.Sample) bool { return len(p) >= 1 })
	if g, w := values(polls[0]), []pv{{0, 0, sample.Timeout, 0}, {sample.NoPoint, 0, sample.Good, 3}}; !slices.Equal(g, w) {
		t.Fatalf("first poll: got %v, want %v", g, w)
	}
	failedAt := time.Unix(0, polls[0][0].Time)
	if st := p.Status()[0]; st.Up || st.ConsecutiveFailures < 1 || st.LastError != "read holding registers 10..10 on D: request timed out" ||
		!slices.Equal(st.Qualities, []sample.Quality{sample.Timeout}) {
		t.Errorf("status = %+v", st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for value(t, reg, "feederd_reconnects_total", "link", "L") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("no reconnect within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	recovered := time.Now()
	im.setDelay(0)
	polls = sink.waitFor(t, 0, "a good poll", func(p [][]sample.Sample) bool {
		return len(p) > 0 && status(p[len(p)-1]).Value == 1
	})
	last := polls[len(polls)-1]
	if g, w := values(last), []pv{{0, -5, sample.Good, 0}, {sample.NoPoint, 1, sample.Good, 3}}; !slices.Equal(g, w) {
		t.Errorf("after recovery: got %v, want %v", g, w)
	}
	// The second connection's first request came no earlier than the
	// first backoff delay after the failure.
	reqs := im.requests()
	for _, r := range reqs[1:] {
		if r.client != reqs[0].client {
			if gap := r.at.Sub(failedAt); gap < 100*time.Millisecond {
				t.Errorf("reconnected %v after the failure, want >= 100ms", gap)
			}
			break
		}
	}
	// Each connection carried one request before it timed out: polls while
	// the link was down failed without touching the server.
	clients := map[string]int{}
	for _, r := range reqs {
		if r.at.Before(recovered) {
			clients[r.client]++
		}
	}
	for c, n := range clients {
		if n != 1 {
			t.Errorf("connection %s carried %d requests while the device timed out, want 1", c, n)
		}
	}
	if st := p.Status()[0]; !st.Up || st.ConsecutiveFailures != 0 || st.LastError != "" || st.LastGood.IsZero() ||
		!slices.Equal(st.Qualities, []sample.Quality{sample.Good}) || st.Latency <= 0 || st.Latency > 100*time.Millisecond {
		t.Errorf("status after recovery = %+v", st)
	}
	if g := value(t, reg, "feederd_link_connected", "link", "L"); g != 1 {
		t.Errorf("link_connected = %v, want 1", g)
	}
}

func TestRefusedConnectionNeverReads(t *testing.T) {
	// Nobody listens: every open fails, and a read would panic in the library.
	pt := profile.Point{Name: "v", RegType: profile.Holding, Address: 0, Type: profile.Uint16}
	dev := testDevice("D", 1, 20*time.Millisecond, pt)
	m := testModel(testLink("L", "tcp://"+freeAddr(t), 100*time.Millisecond, dev))
	sink := newCollector()
	reg := prometheus.NewRegistry()
	p, err := New(Options{Model: m, Sink: sink, Logger: quietLogger(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Ready(); err == nil || err.Error() != "no poll completed yet on link L" {
		t.Errorf("Ready before Run = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	polls := sink.waitFor(t, 0, "5 polls", func(p [][]sample.Sample) bool { return len(p) >= 5 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	for i, poll := range polls {
		if g, w := values(poll), []pv{{0, 0, lost(poll[0].Seq), 0}, {sample.NoPoint, 0, sample.Good, 3}}; !slices.Equal(g, w) {
			t.Errorf("poll %d: got %v, want %v", i, g, w)
		}
	}
	if err := p.Ready(); err != nil {
		t.Errorf("Ready after polls = %v", err)
	}
	st := p.Status()[0]
	if st.Up || st.ConsecutiveFailures < 5 || !strings.HasPrefix(st.LastError, "poll D: open link L (tcp://127.0.0.1:") {
		t.Errorf("status = %+v", st)
	}
	if n := value(t, reg, "feederd_reconnects_total", "link", "L"); n < 1 {
		t.Errorf("reconnects = %v, want >= 1", n)
	}
	if err := p.Run(context.Background()); err == nil || err.Error() != "poller already ran" {
		t.Errorf("second Run = %v", err)
	}
}

func TestQuirkPauses(t *testing.T) {
	im := newImage(1)
	pts := []profile.Point{
		{Name: "a", RegType: profile.Holding, Address: 0, Type: profile.Uint16},
		{Name: "b", RegType: profile.Holding, Address: 1, Type: profile.Uint16},
		{Name: "c", RegType: profile.Holding, Address: 2, Type: profile.Uint16},
	}
	dev := testDevice("D", 1, time.Hour, pts...)
	dev.Quirks = config.Quirks{OneRequestPerPoint: true, PauseBetweenRequests: 60 * time.Millisecond}
	l := testLink("L", serve(t, im), time.Second, dev)
	l.PauseAfterConnect = 150 * time.Millisecond
	sink := newCollector()
	begun := time.Now()
	start(t, testModel(l), sink, prometheus.NewRegistry(), nil)
	sink.waitFor(t, 0, "a poll", func(p [][]sample.Sample) bool { return len(p) >= 1 })
	reqs := im.requests()
	if len(reqs) != 3 {
		t.Fatalf("served %d requests, want 3", len(reqs))
	}
	if d := reqs[0].at.Sub(begun); d < 150*time.Millisecond {
		t.Errorf("first request %v after start, want >= 150ms (pause after connect)", d)
	}
	for i := 1; i < 3; i++ {
		if d := reqs[i].at.Sub(reqs[i-1].at); d < 60*time.Millisecond {
			t.Errorf("request %d came %v after the previous one, want >= 60ms", i, d)
		}
	}
}

func TestLinksAreIsolated(t *testing.T) {
	pt := profile.Point{Name: "v", RegType: profile.Holding, Address: 0, Type: profile.Uint16}
	slow := newImage(1)
	slow.put(pt, 1)
	slow.setDelay(900 * time.Millisecond)
	healthy := newImage(1)
	healthy.put(pt, 3)

	a := testDevice("A", 1, time.Second, pt)
	b := testDevice("B", 1, 200*time.Millisecond, pt)
	c := testDevice("C", 1, 100*time.Millisecond, pt)
	lb := testLink("LB", mute(t), 300*time.Millisecond, b)
	m := testModel(
		testLink("LA", serve(t, slow), 1500*time.Millisecond, a),
		lb,
		testLink("LC", serve(t, healthy), time.Second, c),
	)
	sink := newCollector()
	reg := prometheus.NewRegistry()
	p, stop := start(t, m, sink, reg, nil)
	// Status and Ready are read concurrently with the polls (for -race).
	watching := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Go(func() {
		for {
			select {
			case <-watching:
				return
			case <-time.After(5 * time.Millisecond):
				p.Status()
				p.Ready()
			}
		}
	})
	polls := sink.waitFor(t, 2, "2 s of polls of C", func(p [][]sample.Sample) bool {
		return len(p) > 0 && p[len(p)-1][0].Time-p[0][0].Time >= int64(2*time.Second)
	})
	stop()
	close(watching)
	watcher.Wait()

	first := polls[0][0].Time
	n := 0
	for _, poll := range polls {
		if poll[0].Time-first <= int64(2*time.Second) {
			n++
		}
		if g, w := values(poll), []pv{{0, 3, sample.Good, 0}, {sample.NoPoint, 1, sample.Good, 3}}; !slices.Equal(g, w) {
			t.Errorf("poll seq %d of C: got %v, want %v", poll[0].Seq, g, w)
		}
	}
	// 21 deadlines fall in [0 s, 2 s]; at least 90% of 20.
	t.Logf("C was polled %d times in 2 s", n)
	if n < 18 {
		t.Errorf("C was polled %d times in 2 s, want >= 18", n)
	}
	for i := 1; i < len(polls); i++ {
		if polls[i][0].Seq != polls[i-1][0].Seq+1 {
			t.Errorf("C's seq jumps from %d to %d", polls[i-1][0].Seq, polls[i][0].Seq)
		}
	}
	if got := value(t, reg, "feederd_poll_missed_total", "link", "LC"); got != 0 {
		t.Errorf("missed polls of C = %v, want 0", got)
	}
	st := p.Status()
	if !st[0].Up || st[1].Up || st[1].ConsecutiveFailures < 1 || !st[2].Up {
		t.Errorf("status = %+v", st)
	}
	if len(sink.of(0)) < 1 {
		t.Errorf("A was never polled")
	}
}
