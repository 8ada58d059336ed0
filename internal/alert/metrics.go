package alert

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	sends          *prometheus.CounterVec
	dropped        *prometheus.CounterVec
	queue          *prometheus.GaugeVec
	up             *prometheus.GaugeVec
	requestSeconds *prometheus.HistogramVec
	active         prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		sends: f.NewCounterVec(prometheus.CounterOpts{
			Name: "feederd_alert_sends_total",
			Help: "Requests to alert receivers by result: success (2xx), retry (no answer, timeout, 408, 429, 5xx: sent again), rejected (other answers: not sent again).",
		}, []string{"receiver", "result"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "feederd_alert_dropped_total",
			Help: "Alert changes a receiver lost, oldest first, because it fell more than alerting.queue_size changes behind.",
		}, []string{"receiver"}),
		queue: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "feederd_alert_queue_length",
			Help: "Alert changes waiting for a receiver, including those being sent.",
		}, []string{"receiver"}),
		up: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "feederd_alert_receiver_up",
			Help: "0 when the last request to the receiver failed, else 1 (also before the first).",
		}, []string{"receiver"}),
		requestSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "feederd_alert_request_duration_seconds",
			Help:    "Duration of requests to alert receivers, failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"receiver"}),
		active: f.NewGauge(prometheus.GaugeOpts{
			Name: "feederd_alerts_active",
			Help: "Alerts firing now (set and not resolved).",
		}),
	}
}
