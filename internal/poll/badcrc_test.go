package poll

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/sample"
	"github.com/feederd/feederd/internal/sim/devsrv"
)

// TestBadCRCUnitSparesNeighbour: on a shared RTU line, once both units have
// answered, rtusim's unit 2 starts answering every request with a corrupted
// CRC. From then on unit 1's polls all stay good, the link is never
// reopened, and only unit 2 is down. (The fault starts after both have
// answered so that a slow start of the line on a busy machine, which is not
// what this test is about, cannot count against unit 1.)
func TestBadCRCUnitSparesNeighbour(t *testing.T) {
	vals := map[uint8][]float64{
		1: {231.25, -29.75, 1, 0, 1, 0, 50},
		2: {-118.5, 41, 0, 1, 0, 1, 60.5},
	}
	var good []pv
	for i, v := range vals[1] {
		good = append(good, pv{uint16(i), v, sample.Good, 0})
	}
	good = append(good, pv{sample.NoPoint, 1, sample.Good, sample.DeviceStatus | sample.EndOfPoll})
	for _, tc := range []struct {
		name string
		bus  func(t *testing.T, u *devsrv.Units) *config.Link
	}{
		{"rtuovertcp gateway", rtuOverTCPBus(true)},
		{"rtu over a PTY pair", ptyBus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := busUnits(t, vals)
			l := tc.bus(t, u)
			devs := []*config.Device{
				testDevice("U1", 1, 100*time.Millisecond, busProfile.Points...),
				testDevice("U2", 2, 100*time.Millisecond, busProfile.Points...),
			}
			tl := testLink("BUS", l.URL, 250*time.Millisecond, devs...)
			tl.Scheme, tl.Serial = l.Scheme, l.Serial
			sink := newCollector()
			reg := prometheus.NewRegistry()
			p, stop := start(t, testModel(tl), sink, reg, nil)
			answered := func(p [][]sample.Sample) bool { return len(p) > 0 && status(p[len(p)-1]).Value == 1 }
			sink.waitFor(t, 0, "a good poll of unit 1", answered)
			sink.waitFor(t, 1, "a good poll of unit 2", answered)
			reconnects := value(t, reg, "feederd_reconnects_total", "link", "BUS")
			coilErrors := value(t, reg, "feederd_requests_total", "function", "read_coils", "result", "error")
			from1, from2 := len(sink.of(0)), len(sink.of(1))
			u.Device(2).SetFault(devsrv.Fault{BadCRC: true})
			// The poll of unit 2 in flight may still be good: skip it.
			from2++
			sink.waitFor(t, 1, "10 polls of unit 2 with the fault", func(p [][]sample.Sample) bool { return len(p) >= from2+10 })
			stop()

			p1, p2 := sink.of(0)[from1:], sink.of(1)[from2:]
			if len(p1) < 10 {
				t.Errorf("unit 1 was polled %d times, want >= 10", len(p1))
			}
			bad := 0
			for _, poll := range p1 {
				if g := values(poll); !slices.Equal(g, good) {
					bad++
					t.Errorf("unit 1, poll seq %d:\n got %v\nwant %v", poll[0].Seq, g, good)
				}
			}
			for _, poll := range p2 {
				if s := status(poll); s.Value != 0 {
					t.Errorf("unit 2, poll seq %d: status %v, want 0 (down)", poll[0].Seq, s.Value)
				}
			}
			if n := value(t, reg, "feederd_reconnects_total", "link", "BUS") - reconnects; n != 0 {
				t.Errorf("reconnects since the fault = %v, want 0", n)
			}
			// Unit 2's first request (coils) fails on its CRC and the rest
			// of its plan is not sent.
			n2 := float64(len(p2))
			if got := value(t, reg, "feederd_requests_total", "function", "read_coils", "result", "error") - coilErrors; got < n2 || got > n2+2 {
				t.Errorf("requests_total{read_coils,error} since the fault = %v, want %v..%v", got, n2, n2+2)
			}
			st := p.Status()
			if !st[0].Up || st[0].ConsecutiveFailures != 0 || st[0].LastError != "" {
				t.Errorf("status of U1 = %+v", st[0])
			}
			if st[1].Up || st[1].LastError != "read coils 5..5 on U2: bad crc" {
				t.Errorf("status of U2 = %+v", st[1])
			}
			t.Logf("unit 1: %d polls, %d not good; unit 2: %d polls", len(p1), bad, len(p2))
		})
	}
}
