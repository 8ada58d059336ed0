package poll

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Only feederd_device_up is labelled by device: the poll histograms and
// counters are per link, so that a fleet of 10,000 devices costs one series
// per device here, not 20 (the README's Metrics section gives the count,
// and internal/app's TestMetricCardinality holds the daemon to it).
type metrics struct {
	pollDuration  *prometheus.HistogramVec
	lateness      *prometheus.HistogramVec
	polls         *prometheus.CounterVec
	requests      *prometheus.CounterVec
	deviceUp      *prometheus.GaugeVec
	reconnects    *prometheus.CounterVec
	linkConnected *prometheus.GaugeVec
	missed        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		pollDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "feederd_poll_duration_seconds",
			Help:    "Time one poll of a device on the link took, pauses included; polls while the link is down are not timed.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12), // 5 ms to 10 s
		}, []string{"link"}),
		lateness: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "feederd_poll_lateness_seconds",
			Help: "How long after its schedule slot's deadline a poll of a device on the link started; 0 for a poll that started on time or early.",
			// 0.5 ms to 10 s: under a millisecond is on time, a tenth of
			// the default interval is 0.1.
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"link"}),
		polls: f.NewCounterVec(prometheus.CounterOpts{
			Name: "feederd_polls_total",
			Help: "Polls of the link's devices by result: success (every request answered), partial (some), failure (none).",
		}, []string{"link", "result"}),
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
			Help: "Poll slots of the link's devices skipped because the link was still busy.",
		}, []string{"link"}),
	}
}

// functionLabels are the function label values of feederd_requests_total, by table.
var functionLabels = [...]string{
	"read_coils", "read_discrete_inputs", "read_holding_registers", "read_input_registers",
}

// deleteLink removes the series of a link that a reload removed.
func (m *metrics) deleteLink(id string) {
	m.pollDuration.DeleteLabelValues(id)
	m.lateness.DeleteLabelValues(id)
	m.reconnects.DeleteLabelValues(id)
	m.linkConnected.DeleteLabelValues(id)
	m.missed.DeleteLabelValues(id)
	for _, res := range pollResults {
		m.polls.DeleteLabelValues(id, res)
	}
}
