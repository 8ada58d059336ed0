package config

// The pipeline block: shards and their rings.

type rawPipeline struct {
	Shards     *int    `yaml:"shards"`
	RingSize   *int    `yaml:"ring_size"`
	DropPolicy *string `yaml:"drop_policy"`
}

func (l *loader) pipeline(r *rawPipeline) Pipeline {
	p := l.d.Pipeline
	if r.Shards != nil {
		p.Shards = *r.Shards
		if p.Shards < 0 || p.Shards > maxShards {
			l.s.add("pipeline.shards", "shards %d out of range 0..%d (0: one per GOMAXPROCS)", p.Shards, maxShards)
		}
	}
	if r.RingSize != nil {
		p.RingSize = *r.RingSize
		switch n := p.RingSize; {
		case n < minRingSize || n > MaxRingSize:
			l.s.add("pipeline.ring_size", "ring_size %d out of range %d..%d", n, minRingSize, MaxRingSize)
		case n&(n-1) != 0:
			up := minRingSize
			for up < n {
				up <<= 1
			}
			l.s.add("pipeline.ring_size", "ring_size %d is not a power of two (try %d)", n, up)
		}
	}
	if r.DropPolicy != nil {
		p.DropPolicy = *r.DropPolicy
		if p.DropPolicy != DropOldest && p.DropPolicy != DropNewest {
			l.s.add("pipeline.drop_policy", "unknown drop_policy %q (want oldest or newest)", p.DropPolicy)
		}
	}
	return p
}

const (
	maxShards   = 1024
	minRingSize = 1 << 10
	// MaxRingSize is the largest pipeline.ring_size accepted: the largest
	// ring internal/ring makes (a pipeline test checks that they agree).
	MaxRingSize = 1 << 22
)
