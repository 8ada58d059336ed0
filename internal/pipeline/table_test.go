package pipeline

import (
	"testing"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/influx"
	"github.com/feederd/feederd/internal/profile"
)

// tableOf is the pipeline's Table for a model built in a test. It mirrors
// internal/app's pipelineTable (which this package cannot import: app
// imports it); app's tests check that one against the configuration.
func tableOf(tb testing.TB, m *config.Model) Table {
	tb.Helper()
	top, err := m.DeviceTopology()
	if err != nil {
		tb.Fatal(err)
	}
	devs := make([]Device, len(m.Devices))
	for i, d := range m.Devices {
		di := detect.DeviceInfo{Index: d.Index, ID: d.ID, Feeder: d.Feeder, Upstream: -1, Nominal: d.NominalVoltage,
			PTRatio: d.PTRatio, Interval: d.Interval}
		for _, p := range d.Points {
			di.PointRoles = append(di.PointRoles, p.Role)
		}
		if ref, ok := top.Ref(int(d.Index)); ok && ref.Feeder >= 0 {
			f := top.Feeders[ref.Feeder]
			n := &f.Nodes[ref.Node]
			if n.Parent >= 0 {
				di.Upstream = f.Nodes[n.Parent].Spec
			}
			for _, r := range n.Ties {
				di.Ties = append(di.Ties, top.Node(r).Spec)
			}
		}
		devs[i].DeviceInfo = di
		for _, p := range d.Points {
			for ph, r := range [3]profile.Role{profile.RoleVoltageA, profile.RoleVoltageB, profile.RoleVoltageC} {
				if p.Role == r && p.FloatBits() == 32 {
					devs[i].Float32[ph] = true
				}
			}
		}
	}
	polls, events := influx.NewEncoder(m), influx.NewEventEncoder(m)
	return Table{Devices: devs, Topology: top, Detect: m.Detect,
		NewEncoder: func() Encoder { return influx.NewLines(polls, events) }}
}
