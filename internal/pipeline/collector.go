package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/detect"
)

// stateCollector exposes the detection state of every device from the
// workers' latest snapshots, so /metrics shows feeder health without
// per-device series kept in sync by hand (a device that leaves the
// configuration leaves its series with it).
type stateCollector struct {
	p                             *Pipeline
	voltage, band, energized, com *prometheus.Desc
}

func newStateCollector(p *Pipeline) *stateCollector {
	return &stateCollector{
		p: p,
		voltage: prometheus.NewDesc("feederd_device_voltage_pu",
			"Last good phase voltage in per-unit of the device's nominal.",
			[]string{"device", "feeder", "phase"}, nil),
		band: prometheus.NewDesc("feederd_device_voltage_band",
			"ANSI C84.1 band state of a phase: 0 normal, 1 outside Range A, 2 outside Range B.",
			[]string{"device", "feeder", "phase"}, nil),
		energized: prometheus.NewDesc("feederd_device_energized",
			"1 when the device is energized, 0 when de-energized; absent while unknown.",
			[]string{"device", "feeder"}, nil),
		com: prometheus.NewDesc("feederd_device_comm_ok",
			"1 while the device answers, 0 while it is comm_lost; absent before it was heard.",
			[]string{"device", "feeder"}, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.voltage
	ch <- c.band
	ch <- c.energized
	ch <- c.com
}

var phaseLabels = [3]string{"A", "B", "C"}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.p.Snapshot() {
		if st.ID == "" {
			continue
		}
		for i, ph := range phaseLabels {
			if st.Phases&(detect.PhaseA<<i) == 0 || st.VoltageTime[i] == 0 {
				continue
			}
			ch <- prometheus.MustNewConstMetric(c.voltage, prometheus.GaugeValue, st.Voltage[i], st.ID, st.Feeder, ph)
			ch <- prometheus.MustNewConstMetric(c.band, prometheus.GaugeValue, float64(st.Band[i]), st.ID, st.Feeder, ph)
		}
		switch st.Energy {
		case detect.EnergyEnergized:
			ch <- prometheus.MustNewConstMetric(c.energized, prometheus.GaugeValue, 1, st.ID, st.Feeder)
		case detect.EnergyDeEnergized:
			ch <- prometheus.MustNewConstMetric(c.energized, prometheus.GaugeValue, 0, st.ID, st.Feeder)
		}
		switch st.Comm {
		case detect.CommOK:
			ch <- prometheus.MustNewConstMetric(c.com, prometheus.GaugeValue, 1, st.ID, st.Feeder)
		case detect.CommLost:
			ch <- prometheus.MustNewConstMetric(c.com, prometheus.GaugeValue, 0, st.ID, st.Feeder)
		}
	}
}
