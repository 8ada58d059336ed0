package config

import (
	"runtime"
	"time"
	"unsafe"

	"github.com/feederd/feederd/internal/sample"
)

// Sizes the file may leave to the fleet (raw.go: pipeline.ring_size and
// influx.queue_size).
const (
	// A ring holds a second of its shard's samples, at least minDerivedRing.
	minDerivedRing = 1 << 14
	maxDerivedRing = 1 << 20
	// The queue holds queueSeconds of poll lines, at least one batch and at
	// most maxDerivedQueue lines; past that the spool takes the overflow.
	queueSeconds    = 30
	maxDerivedQueue = 200_000
)

// sizes derives the ring and queue sizes the file does not set from the
// fleet: its samples and poll lines a second.
func (l *loader) sizes(raw *rawConfig, m *Model) {
	var samples, lines float64
	feeders := map[string]bool{}
	for _, d := range m.Devices {
		if d.Interval <= 0 {
			continue
		}
		perSec := float64(time.Second) / float64(d.Interval)
		samples += float64(len(d.Points)+1) * perSec
		lines += perSec
		feeders[d.Feeder] = true
	}
	if raw.Pipeline.RingSize == nil {
		shards := m.Pipeline.Shards
		if shards == 0 {
			shards = runtime.GOMAXPROCS(0)
		}
		rings := float64(min(max(len(feeders), 1), shards))
		n := minDerivedRing
		for float64(n) < samples/rings && n < maxDerivedRing {
			n <<= 1
		}
		m.Pipeline.RingSize = n
	}
	if raw.Influx != nil && raw.Influx.QueueSize == nil {
		q := min(int(lines*queueSeconds), maxDerivedQueue)
		m.Influx.QueueSize = max(q, m.Influx.BatchSize)
	}
}

// Memory bounds. The pipeline makes min(shards, feeders) rings (shards 0:
// GOMAXPROCS of the machine that loads the file), each of ring_size slots of
// ringSlotBytes; together they may take at most MaxRingBytes. The influx
// queue holds at most MaxQueueSize lines of one device poll each (150 to 600
// bytes with the shipped profiles).
const (
	MaxRingBytes  = 1 << 30
	ringSlotBytes = int64(unsafe.Sizeof(sample.Sample{})) + 8 // the sample and its sequence number
	MaxQueueSize  = 5_000_000
)

// memory checks the memory the pipeline rings and the influx queue imply.
func (l *loader) memory(m *Model) {
	if m.Influx.QueueSize > MaxQueueSize {
		l.s.add("influx.queue_size", "queue_size %d is more than %d lines", m.Influx.QueueSize, MaxQueueSize)
	}
	p := m.Pipeline
	if p.RingSize < minRingSize || p.RingSize > MaxRingSize || p.Shards < 0 || p.Shards > maxShards {
		return // reported by pipeline
	}
	feeders := map[string]bool{}
	for _, d := range m.Devices {
		feeders[d.Feeder] = true
	}
	shards := p.Shards
	if shards == 0 {
		shards = runtime.GOMAXPROCS(0)
	}
	rings := int64(min(max(len(feeders), 1), shards))
	if need := rings * int64(p.RingSize) * ringSlotBytes; need > MaxRingBytes {
		path := "pipeline.ring_size"
		if !l.s.Has(path) {
			path = "pipeline.shards"
		}
		l.s.add(path, "%d rings of %d samples need %d MiB, more than the %d MiB allowed: lower ring_size or shards",
			rings, p.RingSize, need>>20, MaxRingBytes>>20)
	}
}
