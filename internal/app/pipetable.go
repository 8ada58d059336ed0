package app

import (
	"context"
	"fmt"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/influx"
	"github.com/feederd/feederd/internal/pipeline"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/topology"
)

// pipelineTable is what the pipeline needs of model m: its devices as
// detection sees them, the topology, detection's parameters and the
// line-protocol encoders of m (the pipeline is the only stage that encodes
// samples, events and outages). The start (Run) and every reload
// (applyPipeline) take it from here.
func pipelineTable(m *config.Model) (pipeline.Table, error) {
	top, err := m.DeviceTopology()
	if err != nil {
		return pipeline.Table{}, fmt.Errorf("pipeline table: %w", err)
	}
	infos := devicesFromModel(m, top)
	devs := make([]pipeline.Device, len(infos))
	for i, d := range m.Devices {
		devs[i].DeviceInfo = infos[i]
		for _, p := range d.Points {
			for ph, r := range [3]profile.Role{profile.RoleVoltageA, profile.RoleVoltageB, profile.RoleVoltageC} {
				if p.Role == r && p.FloatBits() == 32 {
					devs[i].Float32[ph] = true
				}
			}
		}
	}
	polls, events := influx.NewEncoder(m), influx.NewEventEncoder(m)
	return pipeline.Table{
		Devices:    devs,
		Topology:   top,
		Detect:     m.Detect,
		NewEncoder: func() pipeline.Encoder { return influx.NewLines(polls, events) },
	}, nil
}

// devicesFromModel describes every device of the model, in model order,
// with its upstream device and the tie switches that can feed it as top
// (the model's topology, whose nodes are its devices) gives them.
func devicesFromModel(m *config.Model, top *topology.Topology) []detect.DeviceInfo {
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

// pipelineChange says what a reload did to detection, by device ID.
type pipelineChange struct {
	// Kept devices go on with their whole detection state; Fresh ones
	// (added, or with changed detection settings) start anew; Removed
	// ones had their events in progress ended (flag "reconfigured").
	Kept, Fresh, Removed []string
}

// applyPipeline makes the running pipeline follow model m. The poller is paused
// by the caller (no Put runs during the call). It drains what the rings hold,
// then swaps detection, outage engines and the encoder, keeping the detection
// state of every device whose ID and detection-relevant config are unchanged.
func applyPipeline(ctx context.Context, p *pipeline.Pipeline, m *config.Model) (pipelineChange, error) {
	t, err := pipelineTable(m)
	if err != nil {
		return pipelineChange{}, err
	}
	a, err := p.Apply(ctx, t)
	if err != nil {
		return pipelineChange{}, err
	}
	return pipelineChange{Kept: a.Kept, Fresh: append(a.Changed, a.Added...), Removed: a.Removed}, nil
}
