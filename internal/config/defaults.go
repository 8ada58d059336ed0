package config

import (
	"time"

	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/profile"
)

// defaultValues is every value used when a key is absent.
type defaultValues struct {
	Poll PollDefaults
	// Influx holds the defaults of the tuning keys only; url and bucket
	// have none.
	Influx Influx
	HTTP   HTTP
	// Detect is detect.DefaultParams(): the numbers live in detect.
	Detect   detect.Params
	Pipeline Pipeline
	// Alerting holds the defaults of the tuning keys; it has no receivers.
	Alerting Alerting
	// Quirks.MaxGap is not here: a device without quirks.max_gap takes
	// poll.max_gap.
	Quirks  Quirks
	PTRatio float64
	Scale   float64
	Order   profile.WordOrder
}

// defaults is the one place where defaults are set. Keys not listed here
// either inherit (a link's timeout and backoff and a device's interval and
// timeout come from poll, a device's quirks.max_gap from poll.max_gap) or
// are zero (pause_after_connect, pause_between_requests, offset,
// pipeline.shards) or are inferred (a device's kind) or are required.
func defaults() defaultValues {
	return defaultValues{
		Poll: PollDefaults{
			Interval:       time.Second,
			Timeout:        time.Second,
			BackoffInitial: 500 * time.Millisecond,
			BackoffMax:     30 * time.Second,
			MaxGap:         10,
			StaleAfter:     3,
		},
		Influx: Influx{
			BatchSize:     5000,
			FlushInterval: time.Second,
			QueueSize:     200000,
			Timeout:       10 * time.Second,
			Measurement:   "feeder_point",
			SpoolBudget:   1024 << 20,
		},
		HTTP:     HTTP{Listen: "127.0.0.1:9108"},
		Detect:   detect.DefaultParams(),
		Pipeline: Pipeline{RingSize: 1 << 16, DropPolicy: DropOldest},
		Alerting: Alerting{ResendInterval: time.Minute, ActiveFor: 4 * time.Minute, ResolvedFor: 15 * time.Minute, Timeout: 10 * time.Second, QueueSize: 10000},
		Quirks:   Quirks{MaxRegisters: 125, MaxBits: 2000},
		PTRatio:  1,
		Scale:    1,
		Order:    profile.ABCD,
	}
}
