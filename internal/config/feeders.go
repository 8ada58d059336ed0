package config

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/feederd/feederd/internal/topology"
)

type rawFeeder struct {
	ID       string       `yaml:"id"`
	Sections []rawSection `yaml:"sections"`
	Ties     []rawTie     `yaml:"ties"`
}

type rawSection struct {
	ID        string        `yaml:"id"`
	FedBy     string        `yaml:"fed_by"`
	Customers *int          `yaml:"customers"`
	Critical  []rawCritical `yaml:"critical"`
}

type rawCritical struct {
	Name string `yaml:"name"`
	Kind string `yaml:"kind"`
}

type rawTie struct {
	Device string `yaml:"device"`
	To     string `yaml:"to"`
}

// topology builds the model's topology from the devices (their feeder,
// kind and upstream) and the feeders block (sections, customers, ties).
// internal/topology checks its structure; this maps each problem to the
// file line and key path at fault. ID syntax is checked here first: the
// first error at a key path wins.
func (l *loader) topology(raws []rawFeeder, m *Model) {
	spec := topology.Spec{Noun: "device", Locate: func(p []any) string {
		return "line " + strconv.Itoa(l.s.line(keyPath(p)))
	}}
	spec.Nodes = nodeSpecs(m.Devices)
	for i := range raws {
		r := &raws[i]
		fs := topology.FeederSpec{ID: r.ID}
		for j := range r.Sections {
			rs := &r.Sections[j]
			if rs.ID != "" && !validID(rs.ID) {
				l.s.add(indexPath(indexPath("feeders", i)+".sections", j)+".id", "invalid section id %q (want [A-Za-z0-9_.-]+)", rs.ID)
			}
			ss := topology.SectionSpec{ID: rs.ID, FedBy: rs.FedBy, Customers: rs.Customers}
			for _, rc := range rs.Critical {
				ss.Critical = append(ss.Critical, topology.CriticalCustomer{Name: rc.Name, Kind: topology.CriticalKind(rc.Kind)})
			}
			fs.Sections = append(fs.Sections, ss)
		}
		for _, rt := range r.Ties {
			fs.Ties = append(fs.Ties, topology.TieSpec{Device: rt.Device, To: rt.To})
		}
		spec.Feeders = append(spec.Feeders, fs)
	}
	t, err := topology.New(spec)
	var errs topology.Errors
	switch {
	case errors.As(err, &errs):
		for _, e := range errs {
			l.s.add(keyPath(e.Path), "%s", e.Msg)
		}
	case err != nil:
		l.s.add("", "%v", err) // New returns only Errors
	}
	m.Topology = t
}

// keyPath renders a topology path as a key path of the file: the topology's
// nodes are the devices.
func keyPath(p []any) string {
	if len(p) > 0 && p[0] == "nodes" {
		p = append([]any{"devices"}, p[1:]...)
	}
	return topology.PathString(p)
}

func nodeSpecs(devs []*Device) []topology.NodeSpec {
	out := make([]topology.NodeSpec, len(devs))
	for i, d := range devs {
		out[i] = topology.NodeSpec{ID: d.ID, Feeder: d.Feeder, Kind: topology.Kind(d.Kind), Upstream: d.Upstream}
	}
	return out
}

// DeviceTopology returns m.Topology; a Model built in code without one gets
// the topology its devices describe (their trees, no sections or ties).
func (m *Model) DeviceTopology() (*topology.Topology, error) {
	if m.Topology != nil {
		return m.Topology, nil
	}
	t, err := topology.New(topology.Spec{Noun: "device", Nodes: nodeSpecs(m.Devices)})
	if err != nil {
		return nil, fmt.Errorf("topology of the devices: %w", err)
	}
	return t, nil
}
