package ring

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/feederd/feederd/internal/sample"
)

// The benchmarks move b.N samples from P producers to one consumer, through
// a Ring and through a buffered channel of the same capacity. ns/op is per
// item. Ring producers that find the ring full park until the consumer has
// taken a batch (as a channel's senders park when it is full), so that no
// item is dropped and both sides do the same work; the ring's consumer takes
// batches. (The daemon's producers never wait: they drop by policy.) The Batch variants hand over pollBatch samples at a time, as a
// poller does with one device poll: TryPutBatch for the ring, an array
// value for the channel.
const (
	benchCap   = 1024
	benchBatch = 256
	pollBatch  = 16
)

var benchProducers = []int{1, 4, 8}

// share splits n items over p producers.
func share(n, p, i int) int {
	s := n / p
	if i < n%p {
		s++
	}
	return s
}

func BenchmarkRing(b *testing.B) {
	benchRing(b, func(r *Ring[sample.Sample], bp *backpressure, p, count int) {
		s := sample.Sample{Device: uint32(p), Value: 230.1}
		for i := range count {
			s.Seq = uint32(i)
			for !r.TryPut(s) {
				bp.wait(func() bool { return r.Len() >= r.Cap() })
			}
		}
	})
}

// benchRing runs produce in each producer goroutine (producer p puts count
// items, Seq 0..count-1) and takes every item in batches on the benchmark's
// goroutine.
func benchRing(b *testing.B, produce func(r *Ring[sample.Sample], bp *backpressure, p, count int)) {
	for _, producers := range benchProducers {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			r, err := New[sample.Sample](benchCap, DropNewest)
			if err != nil {
				b.Fatal(err)
			}
			bp := newBackpressure()
			b.ReportAllocs()
			var wg sync.WaitGroup
			for p := range producers {
				count := share(b.N, producers, p)
				wg.Go(func() { produce(r, bp, p, count) })
			}
			buf := make([]sample.Sample, benchBatch)
			var sum uint64
			for got := 0; got < b.N; {
				n, err := r.GetBatchWait(context.Background(), buf)
				if err != nil {
					b.Fatal(err)
				}
				bp.taken()
				for _, s := range buf[:n] {
					sum += uint64(s.Seq)
				}
				got += n
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
			checkSum(b, sum, producers)
		})
	}
}

func BenchmarkChan(b *testing.B) {
	for _, producers := range benchProducers {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			ch := make(chan sample.Sample, benchCap)
			b.ReportAllocs()
			var wg sync.WaitGroup
			for p := range producers {
				count := share(b.N, producers, p)
				wg.Go(func() {
					s := sample.Sample{Device: uint32(p), Value: 230.1}
					for i := range count {
						s.Seq = uint32(i)
						ch <- s
					}
				})
			}
			var sum uint64
			for range b.N {
				s := <-ch
				sum += uint64(s.Seq)
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
			checkSum(b, sum, producers)
		})
	}
}

func BenchmarkRingBatch(b *testing.B) {
	benchRing(b, func(r *Ring[sample.Sample], bp *backpressure, p, count int) {
		var batch [pollBatch]sample.Sample
		for i := 0; i < count; {
			k := min(pollBatch, count-i)
			for j := range k {
				batch[j] = sample.Sample{Device: uint32(p), Value: 230.1, Seq: uint32(i + j)}
			}
			i += k
			for rest := batch[:k]; len(rest) > 0; {
				n := r.TryPutBatch(rest)
				if n == 0 {
					bp.wait(func() bool { return r.Len() >= r.Cap() })
				}
				rest = rest[n:]
			}
		}
	})
}

type chanBatch struct {
	n int
	s [pollBatch]sample.Sample
}

func BenchmarkChanBatch(b *testing.B) {
	for _, producers := range benchProducers {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			ch := make(chan chanBatch, benchCap/pollBatch)
			b.ReportAllocs()
			var wg sync.WaitGroup
			for p := range producers {
				count := share(b.N, producers, p)
				wg.Go(func() {
					for i := 0; i < count; {
						var batch chanBatch
						batch.n = min(pollBatch, count-i)
						for j := range batch.n {
							batch.s[j] = sample.Sample{Device: uint32(p), Value: 230.1, Seq: uint32(i + j)}
						}
						i += batch.n
						ch <- batch
					}
				})
			}
			var sum uint64
			for got := 0; got < b.N; {
				batch := <-ch
				for _, s := range batch.s[:batch.n] {
					sum += uint64(s.Seq)
				}
				got += batch.n
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
			checkSum(b, sum, producers)
		})
	}
}

// checkSum makes sure every item went through exactly once.
func checkSum(b *testing.B, sum uint64, producers int) {
	var want uint64
	for p := range producers {
		c := uint64(share(b.N, producers, p))
		want += c * (c - 1) / 2
	}
	if c := uint64(share(b.N, producers, 0)); c == 0 {
		want = 0
	}
	if sum != want {
		b.Fatalf("sequence sum %d, want %d", sum, want)
	}
}

// backpressure parks producers that find the ring full until the consumer
// has taken a batch, as a full channel parks its senders.
type backpressure struct {
	mu      sync.Mutex
	cond    *sync.Cond
	waiting atomic.Int32
	gen     uint64
}

func newBackpressure() *backpressure {
	bp := &backpressure{}
	bp.cond = sync.NewCond(&bp.mu)
	return bp
}

func (bp *backpressure) wait(full func() bool) {
	bp.mu.Lock()
	bp.waiting.Add(1)
	g := bp.gen
	for g == bp.gen && full() {
		bp.cond.Wait()
	}
	bp.waiting.Add(-1)
	bp.mu.Unlock()
}

func (bp *backpressure) taken() {
	if bp.waiting.Load() > 0 {
		bp.mu.Lock()
		bp.gen++
		bp.mu.Unlock()
		bp.cond.Broadcast()
	}
}
