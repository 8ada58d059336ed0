package poll

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// discard is a Sink that keeps nothing.
type discard struct{}

func (discard) Put([]sample.Sample) {}

// rtu12 are the points of the fleet benchmark's device: 12 float32 input
// registers.
func rtu12() []profile.Point {
	pts := make([]profile.Point, 12)
	for i := range pts {
		pts[i] = profile.Point{Name: fmt.Sprintf("p%d", i), RegType: profile.Input, Address: uint16(2 * i), Type: profile.Float32}
	}
	return pts
}

// BenchmarkPoll is one poll of a 12-float32 device over loopback TCP, the
// library's server answering; allocations include the library's and the
// server's.
func BenchmarkPoll(b *testing.B) {
	for _, tc := range []struct {
		name string
		fail bool
	}{{"answered", false}, {"link down", true}} {
		b.Run(tc.name, func(b *testing.B) {
			im := newImage(1)
			dev := testDevice("D", 1, time.Hour, rtu12()...)
			l := stepLink(b, testModel(testLink("L", serve(b, im), time.Second, dev)), discard{}, prometheus.NewRegistry())
			if tc.fail {
				l.fail(fmt.Errorf("link L: closed by the benchmark"))
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				// Polls run far ahead of the one-hour schedule: keep
				// its slot number small.
				l.sched.slots[0].k = 0
				l.poll(ctx, 0)
			}
		})
	}
}

// BenchmarkSettle is the end of a poll of a 12-point device: times, last
// good slots, stale qualities.
func BenchmarkSettle(b *testing.B) {
	d := newDevice(testDevice("D", 1, time.Second, rtu12()...), testLink("L", "tcp://127.0.0.1:1", time.Second), newMetrics(prometheus.NewRegistry()), quietLogger())
	points := d.samples[:len(d.samples)-1]
	b.ReportAllocs()
	k := int64(0)
	for b.Loop() {
		k++
		for j := range points {
			points[j].Quality = sample.Quality(j % 3 * 2) // good, timeout, invalid
		}
		d.settle(k, 1, 3)
	}
}
