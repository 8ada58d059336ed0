package poll

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// TestLatenessHistogram: two devices on a gateway, both every second, the
// slow one (S, answering after 700 ms) due half a second before the other
// (F). Each of F's polls waits for S's to end, so it starts at least 200 ms
// after its deadline; S's start on time. The link's lateness histogram has
// one observation per poll and shows both.
func TestLatenessHistogram(t *testing.T) {
	pt := profile.Point{Name: "v", RegType: profile.Holding, Address: 0, Type: profile.Uint16}
	slow, fast := newImage(1), newImage(2)
	slow.put(pt, 1)
	fast.put(pt, 2)
	slow.setDelay(700 * time.Millisecond)
	s := testDevice("S", 1, time.Second, pt)
	f := testDevice("F", 2, time.Second, pt)
	m := testModel(testLink("GW", serveHandler(t, gateway{1: slow, 2: fast}), 2*time.Second, s, f))
	sink := newCollector()
	reg := prometheus.NewRegistry()
	_, stop := start(t, m, sink, reg, nil)
	sink.waitFor(t, 1, "3 polls of F", func(p [][]sample.Sample) bool { return len(p) >= 3 })
	stop()

	polls := 0.0
	for _, res := range pollResults {
		polls += value(t, reg, "feederd_polls_total", "link", "GW", "result", res)
	}
	h := histogram(t, reg, "feederd_poll_lateness_seconds", "link", "GW")
	nf := len(sink.of(1))
	onTime, underSecond := bucket(h, 0.1), bucket(h, 1)
	t.Logf("%d polls; lateness: %d observations, %d within 100 ms, %d within 1 s, sum %.3f s; F polled %d times",
		int(polls), h.GetSampleCount(), onTime, underSecond, h.GetSampleSum(), nf)
	if float64(h.GetSampleCount()) != polls {
		t.Errorf("lateness observations = %d, want one per poll (%v)", h.GetSampleCount(), polls)
	}
	if late := h.GetSampleCount() - onTime; late < uint64(nf) {
		t.Errorf("%d polls more than 100 ms late, want at least F's %d", late, nf)
	}
	if onTime < 1 {
		t.Errorf("no poll within 100 ms of its deadline; S's should be")
	}
	if h.GetSampleSum() < 0.2*float64(nf) {
		t.Errorf("lateness sum %.3f s, want at least 200 ms for each of F's %d polls", h.GetSampleSum(), nf)
	}
}

// histogram returns the histogram series of name with the given labels.
func histogram(t *testing.T, reg *prometheus.Registry, name string, labels ...string) *dto.Histogram {
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
			if h := m.GetHistogram(); h != nil {
				return h
			}
		}
	}
	t.Fatalf("no histogram %s%v", name, labels)
	return nil
}

// bucket returns the cumulative count of h's bucket with upper bound le.
func bucket(h *dto.Histogram, le float64) uint64 {
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount()
		}
	}
	return 0
}
