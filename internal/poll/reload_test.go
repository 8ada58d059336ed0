package poll

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
	"github.com/feederd/feederd/internal/testenv"
)

// eventually waits up to 10 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// valueOf is the first point's value in a poll.
func valueOf(poll []sample.Sample) float64 { return poll[0].Value }

func TestReloadLinks(t *testing.T) {
	pt := profile.Point{Name: "v", RegType: profile.Holding, Type: profile.Uint16}
	ims := map[string]*image{}
	conns := map[string]*testenv.ConnCounter{}
	for i, id := range []string{"A", "B", "C"} {
		im := newImage(uint8(i + 1))
		im.holding[0] = uint16(111 * (i + 1))
		ims[id] = im
		conns[id] = testenv.CountConns(t, serve(t, im))
	}
	const iv = 40 * time.Millisecond
	dev := func(id string) *config.Device {
		return testDevice("D"+id, uint8(id[0]-'A'+1), iv, pt)
	}
	m1 := testModel(testLink("LA", conns["A"].URL, time.Second, dev("A")), testLink("LB", conns["B"].URL, time.Second, dev("B")))
	sink := newCollector()
	reg := prometheus.NewRegistry()
	p, _ := start(t, m1, sink, reg, nil)
	sink.waitFor(t, 0, "DA's first poll", func(p [][]sample.Sample) bool { return len(p) > 0 })
	sink.waitFor(t, 1, "DB's first poll", func(p [][]sample.Sample) bool { return len(p) > 0 })

	// LC with DC comes first, so DA moves from index 0 to 1; LB goes; DA's
	// feeder changes, which does not touch its link.
	da := dev("A")
	da.Feeder = "F2"
	m2 := testModel(testLink("LC", conns["C"].URL, time.Second, dev("C")), testLink("LA", conns["A"].URL, time.Second, da))
	u, err := p.Prepare(m2)
	if err != nil {
		t.Fatal(err)
	}
	if got := [][]string{u.Kept, u.Started, u.Stopped, u.Restarted}; !slices.EqualFunc(got, [][]string{{"LA"}, {"LC"}, {"LB"}, nil}, slices.Equal) {
		t.Fatalf("update kept, started, stopped, restarted = %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	// Parked links send nothing, for ten intervals.
	nA, nB := len(ims["A"].requests()), len(ims["B"].requests())
	time.Sleep(10 * iv)
	if a, b := len(ims["A"].requests()), len(ims["B"].requests()); a != nA || b != nB {
		t.Fatalf("requests while paused: A %d -> %d, B %d -> %d", nA, a, nB, b)
	}
	if err := p.Apply(u); err != nil {
		t.Fatal(err)
	}
	// LB's goroutine has ended and closed its connection.
	eventually(t, "LB's connection closed", func() bool { return conns["B"].Open.Load() == 0 })
	nB = len(ims["B"].requests())
	before := len(sink.of(1))
	p.Resume()

	sink.waitFor(t, 0, "DC's polls at index 0", func(p [][]sample.Sample) bool { return len(p) >= 3 })
	polls := sink.waitFor(t, 1, "DA's polls at index 1", func(p [][]sample.Sample) bool { return len(p) >= before+3 })
	for _, pl := range polls[before:] {
		if v := valueOf(pl); v != 111 {
			t.Fatalf("a poll at index 1 after the reload read %v, want DA's 111", v)
		}
	}
	for _, pl := range sink.of(0) {
		if v := valueOf(pl); v != 111 && v != 333 {
			t.Fatalf("a poll at index 0 read %v", v)
		}
	}
	if got := len(ims["B"].requests()); got != nB {
		t.Fatalf("DB got %d requests after its link was removed", got-nB)
	}
	if got := conns["A"].Accepts.Load(); got != 1 {
		t.Fatalf("LA connected %d times, want 1: a kept link keeps its connection", got)
	}
	if got := conns["C"].Accepts.Load(); got != 1 {
		t.Fatalf("LC connected %d times, want 1", got)
	}
	var ids []string
	for _, s := range p.Status() {
		ids = append(ids, s.ID+"@"+s.Link)
	}
	if want := []string{"DC@LC", "DA@LA"}; !slices.Equal(ids, want) {
		t.Fatalf("Status = %q, want %q", ids, want)
	}
	// LB's and DB's series are gone; LA's and LC's are there.
	if n := testutil.CollectAndCount(reg, "feederd_link_connected"); n != 2 {
		t.Fatalf("%d feederd_link_connected series, want 2", n)
	}
	if n := testutil.CollectAndCount(reg, "feederd_device_up"); n != 2 {
		t.Fatalf("%d feederd_device_up series, want 2", n)
	}
	if n := testutil.CollectAndCount(reg, "feederd_polls_total"); n != 6 {
		t.Fatalf("%d feederd_polls_total series, want 6 (2 links x 3 results)", n)
	}

	// A changed interval restarts DA's link on a new connection.
	da3 := dev("A")
	da3.Interval = 2 * iv
	m3 := testModel(testLink("LC", conns["C"].URL, time.Second, dev("C")), testLink("LA", conns["A"].URL, time.Second, da3))
	u, err = p.Prepare(m3)
	if err != nil {
		t.Fatal(err)
	}
	if got := [][]string{u.Kept, u.Started, u.Stopped, u.Restarted}; !slices.EqualFunc(got, [][]string{{"LC"}, nil, nil, {"LA"}}, slices.Equal) {
		t.Fatalf("update kept, started, stopped, restarted = %q", got)
	}
	if err := p.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(u); err != nil {
		t.Fatal(err)
	}
	p.Resume()
	eventually(t, "LA's second connection", func() bool { return conns["A"].Accepts.Load() == 2 })
	eventually(t, "LA's first connection closed", func() bool { return conns["A"].Open.Load() == 1 })
	if got := conns["C"].Accepts.Load(); got != 1 {
		t.Fatalf("LC connected %d times, want 1", got)
	}
}

// A link in a long request does not park in time: Pause says which and the
// poller goes on.
func TestPauseDeadline(t *testing.T) {
	pt := profile.Point{Name: "v", RegType: profile.Holding, Type: profile.Uint16}
	fast, slow := newImage(1), newImage(2)
	m := testModel(testLink("fast", serve(t, fast), time.Second, testDevice("F", 1, 20*time.Millisecond, pt)),
		testLink("slow", serve(t, slow), 5*time.Second, testDevice("S", 2, 20*time.Millisecond, pt)))
	sink := newCollector()
	p, _ := start(t, m, sink, prometheus.NewRegistry(), nil)
	sink.waitFor(t, 1, "S's first poll", func(p [][]sample.Sample) bool { return len(p) > 0 })
	slow.setDelay(2 * time.Second)
	eventually(t, "a slow request in flight", func() bool {
		r := slow.requests()
		return len(r) > 0 && time.Since(r[len(r)-1].at) < time.Second && len(sink.of(1)) < len(r)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := p.Pause(ctx)
	if err == nil || err.Error() != "pause polling: link slow did not reach a poll boundary in time: context deadline exceeded" {
		t.Fatalf("Pause = %v", err)
	}
	n := len(sink.of(0))
	sink.waitFor(t, 0, "F's polls after the failed pause", func(p [][]sample.Sample) bool { return len(p) >= n+3 })
	if err := p.Apply(&Update{}); err == nil || err.Error() != "apply: the poller is not paused" {
		t.Fatalf("Apply without Pause = %v", err)
	}
}
