package pipeline

import (
	"testing"
	"time"

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
