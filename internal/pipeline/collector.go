package pipeline

import (
	"strconv"

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
	devs := c.p.tab.Load().Devices
	for di, st := range c.p.Snapshot() {
		if st.ID == "" {
			continue
		}
		for i, ph := range phaseLabels {
			if st.Phases&(detect.PhaseA<<i) == 0 || st.VoltageTime[i] == 0 {
				continue
			}
			v := st.Voltage[i]
			// A snapshot a table older than devs may still name an
			// index beyond it.
			if di < len(devs) && devs[di].Float32[i] {
				v = shortest32(v)
			}
			ch <- prometheus.MustNewConstMetric(c.voltage, prometheus.GaugeValue, v, st.ID, st.Feeder, ph)
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

// shortest32 returns the float64 nearest to the shortest decimal that reads
// back as float32(v): a per-unit voltage from a float32 register (7070.4 V
// of 7200) is exposed as 0.982, not 0.9819999864366319, since the
// exposition format prints float64s in full. It runs per scrape, not per
// sample.
func shortest32(v float64) float64 {
	var buf [32]byte
	f, err := strconv.ParseFloat(string(strconv.AppendFloat(buf[:0], v, 'g', -1, 32)), 64)
	if err != nil {
		return v // NaN and infinities parse back; nothing else fails
	}
	return f
}
