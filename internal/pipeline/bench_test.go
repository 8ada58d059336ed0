package pipeline

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/ring"
	"github.com/feederd/feederd/internal/sample"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkHotPath measures the whole path a sample takes on one core:
// Put into the shard's ring, batch dequeue, detection, line-protocol
// encoding (one line per device poll), hand-off of full batches. 1000
// devices on 100 feeders, one shard, polls of 4 points plus the status
// sample, steady normal voltage; b.N counts samples. Run with -cpu 1 for
// the one-core figure.
func BenchmarkHotPath(b *testing.B) {
	m := model(100, 10)
	var lines countLines
	p := newPipeline(b, m, 1, &lines, prometheus.NewRegistry())
	sh := p.shards[0]
	t0 := time.Now()
	batch := make([]sampleBuf, len(m.Devices))
	for d := range m.Devices {
		batch[d] = sampleBuf(poll(uint32(d), t0, 1, 120, 120.5, 119.5))
	}
	buf := make([]sampleT, 1024)
	perPoll := len(batch[0])
	b.ReportAllocs()
	b.ResetTimer()
	samples, polls := 0, 0
	for i := 0; samples < b.N; i++ {
		dev := i % len(batch)
		pl := batch[dev]
		ns := t0.Add(time.Duration(i/len(batch)) * time.Second).UnixNano()
		for k := range pl {
			pl[k].Time = ns
		}
		p.Put(pl)
		samples += perPoll
		polls++
		if sh.ring.Len() >= 512 || samples >= b.N {
			for {
				n := sh.ring.GetBatch(buf)
				if n == 0 {
					break
				}
				sh.process(buf[:n])
			}
		}
	}
	b.StopTimer()
	sh.flush()
	b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(samples), "ns/sample")
	b.ReportMetric(float64(lines.n)/float64(polls), "lines/poll")
}

type (
	sampleBuf = []sample.Sample
	sampleT   = sample.Sample
)

// countLines is a LineSink that counts the lines and drops them.
type countLines struct{ n int }

func (c *countLines) PutLines(_ []byte, n int) { c.n += n }

// BenchmarkApply measures one reload of a running pipeline of 10,000
// devices (1,000 feeders of 10) on two shards, with an event in progress
// on every device: park the workers, build and adopt, rebuild the outage
// logic, resume. The two tables differ in the first device, so that every
// index moves; b.N counts reloads.
func BenchmarkApply(b *testing.B) {
	m := model(1000, 10)
	tA := tableOf(b, m)
	mB := reloadedFirst(m)
	tB := tableOf(b, mB)
	p, err := New(Options{Table: tA, Lines: &countLines{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer: prometheus.NewRegistry(), Shards: 2, RingSize: 1 << 16, Policy: ring.DropNewest})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 11, 28, 4, 0, 0, 0, time.UTC)
	for d := range m.Devices {
		p.Put(poll(uint32(d), t0, 1, 60, 120, 120)) // a sag on each
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for p.Ready() != nil {
		time.Sleep(time.Millisecond)
	}
	for _, sh := range p.shards {
		for sh.ring.Len() > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		tab := tB
		if i%2 == 1 {
			tab = tA
		}
		if _, err := p.Apply(context.Background(), tab); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	p.Quiesce()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// reloadedFirst is m with a device of a new feeder first.
func reloadedFirst(m *config.Model) *config.Model {
	out := &config.Model{Detect: m.Detect}
	add := *m.Devices[0]
	add.ID, add.Feeder, add.Upstream = "NEW-D0", "NEW", ""
	out.Devices = append(out.Devices, &add)
	for _, d := range m.Devices {
		c := *d
		out.Devices = append(out.Devices, &c)
	}
	return reindex(out)
}
