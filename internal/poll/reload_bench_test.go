package poll

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/config"
)

// BenchmarkReloadKept is one reload of the poller (Prepare, Pause, Apply,
// Resume) at 1,000 links of 10 devices each, every link kept: the time
// polling stands still for the poller's part of a reload, and its cost.
// paused-us/op is the part from Pause to Resume. The links' address refuses connections, so each is idle between
// reconnect attempts, as a link between polls is.
func BenchmarkReloadKept(b *testing.B) {
	addr := freeAddr(b)
	model := func() *config.Model {
		var links []*config.Link
		for l := range 1000 {
			var devs []*config.Device
			for d := range 10 {
				devs = append(devs, testDevice(fmt.Sprintf("D%d-%d", l, d), uint8(d+1), time.Second, rtu12()...))
			}
			lk := testLink(fmt.Sprintf("L%d", l), "tcp://"+addr, 100*time.Millisecond, devs...)
			lk.BackoffInitial, lk.BackoffMax = time.Second, time.Second
			links = append(links, lk)
		}
		return testModel(links...)
	}
	p, err := New(Options{Model: model(), Sink: discard{}, Logger: quietLogger(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	next := model()
	time.Sleep(100 * time.Millisecond) // every link started
	b.ReportAllocs()
	b.ResetTimer()
	var paused time.Duration
	for b.Loop() {
		u, err := p.Prepare(next)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := p.Pause(pctx); err != nil {
			b.Fatal(err)
		}
		pcancel()
		if err := p.Apply(u); err != nil {
			b.Fatal(err)
		}
		p.Resume()
		paused += time.Since(t0)
		if len(u.Kept) != 1000 {
			b.Fatalf("%d links kept", len(u.Kept))
		}
	}
	b.ReportMetric(float64(paused.Microseconds())/float64(b.N), "paused-us/op")
}
