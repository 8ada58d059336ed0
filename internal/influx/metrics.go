package influx

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	written       prometheus.Counter
	failed        *prometheus.CounterVec
	dropped       prometheus.Counter
	writes        *prometheus.CounterVec
	queueLines    prometheus.Gauge
	writeDuration prometheus.Histogram
	up            prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		written: f.NewCounter(prometheus.CounterOpts{
			Name: "feederd_influx_points_written_total",
			Help: "Lines InfluxDB accepted.",
		}),
		failed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "feederd_influx_points_failed_total",
			Help: "Lines given up: rejected by InfluxDB (4xx, partial writes) or left undelivered at shutdown.",
		}, []string{"reason"}),
		dropped: f.NewCounter(prometheus.CounterOpts{
			Name: "feederd_influx_points_dropped_total",
			Help: "Lines dropped, oldest batch first, because the queue was full while InfluxDB was slow or down.",
		}),
		writes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "feederd_influx_writes_total",
			Help: "Write requests by result: success, retry (unreachable, 5xx, 401/403/404/408/429), rejected (other 4xx).",
		}, []string{"result"}),
		queueLines: f.NewGauge(prometheus.GaugeOpts{
			Name: "feederd_influx_queue_lines",
			Help: "Lines waiting for delivery, including the batch being filled and the batch being written.",
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
	for _, r := range []string{"success", "retry", "rejected"} {
		m.writes.WithLabelValues(r)
	}
	return m
}
