package influx

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	written       prometheus.Counter
	replayed      prometheus.Counter
	spooled       prometheus.Counter
	spoolCorrupt  prometheus.Counter
	failed        *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	writes        *prometheus.CounterVec
	queueLines    prometheus.Gauge
	writeDuration prometheus.Histogram
	up            prometheus.Gauge
}

// Reasons a line is dropped (feederd_influx_points_dropped_total).
var dropReasons = []string{"queue_full", "spool_budget"}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		written: f.NewCounter(prometheus.CounterOpts{
			Name: "feederd_influx_points_written_total",
			Help: "Lines InfluxDB accepted, replayed ones included.",
		}),
		replayed: f.NewCounter(prometheus.CounterOpts{
			Name: "feederd_influx_points_replayed_total",
			Help: "Lines InfluxDB accepted from the spool (also counted in feederd_influx_points_written_total).",
		}),
		spooled: f.NewCounter(prometheus.CounterOpts{
			Name: "feederd_influx_points_spooled_total",
			Help: "Lines written to the on-disk spool because InfluxDB could not take them.",
		}),
		spoolCorrupt: f.NewCounter(prometheus.CounterOpts{
			Name: "feederd_influx_spool_corrupt_records_total",
			Help: "Spool records skipped on replay because their checksum failed (torn by a crash, or damaged).",
		}),
		failed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "feederd_influx_points_failed_total",
			Help: "Lines given up: rejected by InfluxDB as bad data (dead-lettered), or lost at shutdown.",
		}, []string{"reason"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "feederd_influx_points_dropped_total",
			Help: "Lines dropped, oldest first: queue_full (memory queue full without a spool), spool_budget (spool over its disk budget).",
		}, []string{"reason"}),
		writes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "feederd_influx_writes_total",
			Help: "Write requests by result: success, retry (unreachable, 5xx, 401/403/404/408/429), rejected (other 4xx), split (a 413 or 4xx answer made the batch be written in halves).",
		}, []string{"result"}),
		queueLines: f.NewGauge(prometheus.GaugeOpts{
			Name: "feederd_influx_queue_lines",
			Help: "Lines waiting for delivery in memory, including the batch being filled and the batch being written.",
		}),
		writeDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "feederd_influx_write_duration_seconds",
			Help:    "Duration of write requests to InfluxDB, failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
		}),
		up: f.NewGauge(prometheus.GaugeOpts{
			Name: "feederd_influx_up",
			Help: "1 when the last write or ping reached InfluxDB, else 0.",
		}),
	}
	for _, r := range []string{"rejected", "shutdown"} {
		m.failed.WithLabelValues(r)
	}
	for _, r := range dropReasons {
		m.dropped.WithLabelValues(r)
	}
	for _, r := range []string{"success", "retry", "rejected", "split"} {
		m.writes.WithLabelValues(r)
	}
	return m
}

// registerQueue adds the gauges read when scraped: the age of the memory
// queue and, with a spool, its size and age.
func (m *metrics) registerQueue(reg prometheus.Registerer, queueAge func() float64, sp *Spool) {
	f := promauto.With(reg)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "feederd_influx_queue_age_seconds",
		Help: "How long the oldest line waiting in memory has waited; 0 when none waits.",
	}, queueAge)
	if sp == nil {
		return
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "feederd_influx_spool_bytes",
		Help: "Bytes of the on-disk spool's segments.",
	}, func() float64 { return float64(sp.Stats().Bytes) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "feederd_influx_spool_segments",
		Help: "Segment files of the on-disk spool.",
	}, func() float64 { return float64(sp.Stats().Segments) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "feederd_influx_spool_oldest_age_seconds",
		Help: "Age of the oldest spooled batch not yet replayed; 0 when the spool is empty.",
	}, func() float64 {
		if o := sp.Stats().Oldest; !o.IsZero() {
			return time.Since(o).Seconds()
		}
		return 0
	})
}
