package poll

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	pollDuration  *prometheus.HistogramVec
	polls         *prometheus.CounterVec
	requests      *prometheus.CounterVec
	deviceUp      *prometheus.GaugeVec
	reconnects    *prometheus.CounterVec
	linkConnected *prometheus.GaugeVec
	missed        *prometheus.CounterVec
	late          *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		pollDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "feederd_poll_duration_seconds",
			Help:    "Time one poll of a device took, pauses included; polls while the link is down are not timed.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12), // 5 ms to 10 s
		}, []string{"device"}),
		polls: f.NewCounterVec(prometheus.CounterOpts{
			Name: "feederd_polls_total",
			Help: "Device polls by result: success (every request answered), partial (some), failure (none).",
		}, []string{"device", "result"}),
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "feederd_requests_total",
			Help: "Modbus read requests sent, by function and result (ok, exception, timeout, error); a gateway's answer that it cannot reach the unit (0x0A, 0x0B) counts as timeout.",
		}, []string{"function", "result"}),
		deviceUp: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "feederd_device_up",
			Help: "1 if the device's last poll got at least one normal response, else 0.",
		}, []string{"device", "link"}),
		reconnects: f.NewCounterVec(prometheus.CounterOpts{
			Name: "feederd_reconnects_total",
			Help: "Attempts to reopen a link after it failed (the first connect is not counted).",
		}, []string{"link"}),
		linkConnected: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "feederd_link_connected",
			Help: "1 while the link's connection or serial port is open, else 0.",
		}, []string{"link"}),
		missed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "feederd_poll_missed_total",
			Help: "Poll slots of a device skipped because the link was still busy.",
		}, []string{"device"}),
		late: f.NewCounterVec(prometheus.CounterOpts{
			Name: "feederd_poll_late_total",
			Help: "Polls of a device that started more than a tenth of its interval after their deadline.",
		}, []string{"device"}),
	}
}

// functionLabels are the function label values of feederd_requests_total, by table.
var functionLabels = [...]string{
	"read_coils", "read_discrete_inputs", "read_holding_registers", "read_input_registers",
}
