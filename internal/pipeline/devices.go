// Package pipeline is feederd's ingest path between the pollers and the
// outputs: a ring per shard, one worker goroutine per shard running
// detection and line-protocol encoding, and the snapshots readers see.
package pipeline

import (
	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/profile"
)

// DevicesFromModel describes every device of the model, in model order.
func DevicesFromModel(m *config.Model) []detect.DeviceInfo {
	byID := make(map[string]uint32, len(m.Devices))
	for _, d := range m.Devices {
		byID[d.ID] = d.Index
	}
	out := make([]detect.DeviceInfo, 0, len(m.Devices))
	for _, d := range m.Devices {
		up := -1
		if i, ok := byID[d.Upstream]; ok && d.Upstream != "" {
			up = int(i)
		}
		roles := make([]profile.Role, len(d.Points))
		for i, p := range d.Points {
			roles[i] = p.Role
		}
		out = append(out, detect.DeviceInfo{
			Index:      d.Index,
			ID:         d.ID,
			Feeder:     d.Feeder,
			Upstream:   up,
			Nominal:    d.NominalVoltage,
			PTRatio:    d.PTRatio,
			Interval:   d.Interval,
			PointRoles: roles,
		})
	}
	for _, f := range m.Feeders {
		for _, t := range f.Ties {
			out[t.To.Index].Ties = append(out[t.To.Index].Ties, int(t.Device.Index))
		}
	}
	return out
}
