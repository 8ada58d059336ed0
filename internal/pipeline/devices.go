// Package pipeline is feederd's ingest path between the pollers and the
// outputs: a ring per shard, one worker goroutine per shard running
// detection and line-protocol encoding, and the snapshots readers see.
package pipeline

import (
	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/topology"
)

// DevicesFromModel describes every device of the model, in model order,
// with its upstream device and the tie switches that can feed it as top
// (the model's topology, whose nodes are its devices) gives them.
func DevicesFromModel(m *config.Model, top *topology.Topology) []detect.DeviceInfo {
	out := make([]detect.DeviceInfo, 0, len(m.Devices))
	for _, d := range m.Devices {
		roles := make([]profile.Role, len(d.Points))
		for i, p := range d.Points {
			roles[i] = p.Role
		}
		up := -1
		var ties []int
		if ref, ok := top.Ref(int(d.Index)); ok && ref.Feeder >= 0 {
			f := top.Feeders[ref.Feeder]
			n := &f.Nodes[ref.Node]
			if n.Parent >= 0 {
				up = f.Nodes[n.Parent].Spec
			}
			for _, r := range n.Ties {
				ties = append(ties, top.Node(r).Spec)
			}
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
			Ties:       ties,
		})
	}
	return out
}
