package config

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/feederd/feederd/internal/topology"
)

// Shard is the part of a configuration that one of several feederd
// instances sharing it polls: instance Index of Count (`feederd run -shard
// i/n`); 0/1 is the whole configuration.
//
// The unit of sharding is the feeder, because outage localisation needs all
// of a feeder's devices in one process; and feeders that share a link (a
// gateway, a serial bus) stay together, because one connection, and a
// serial port above all, cannot be opened by two instances. So the devices
// fall into groups, each a feeder and every feeder joined to it through
// shared links, and a group belongs to shard i when the 32-bit FNV-1a hash
// of its lowest feeder ID (in byte order) modulo Count is i. A group of one
// feeder, the usual case, is placed by its own feeder ID. The hash depends
// on nothing but the IDs, so every instance given the same file and Count
// agrees on the assignment: each group is polled by exactly one of the
// Count instances. A device without a feeder (Load rejects that; a Model
// built in code may have one) is placed by its device ID.
type Shard struct {
	Index, Count int
}

// ParseShard reads "i/n", with 0 <= i < n.
func ParseShard(s string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	i, ierr := strconv.Atoi(is)
	n, nerr := strconv.Atoi(ns)
	if !ok || ierr != nil || nerr != nil {
		return Shard{}, fmt.Errorf("shard %q: want i/n, two integers with 0 <= i < n, e.g. 0/2", s)
	}
	sh := Shard{Index: i, Count: n}
	if err := sh.Validate(); err != nil {
		return Shard{}, err
	}
	return sh, nil
}

// Validate reports whether s names a shard.
func (s Shard) Validate() error {
	switch {
	case s.Count < 1:
		return fmt.Errorf("shard %d/%d: the count must be at least 1", s.Index, s.Count)
	case s.Index < 0 || s.Index >= s.Count:
		return fmt.Errorf("shard %d/%d: the index must be in 0..%d", s.Index, s.Count, s.Count-1)
	}
	return nil
}

// String is "i/n".
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// owns reports whether the group placed by key belongs to s.
func (s Shard) owns(key string) bool {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key)) // a hash.Hash never fails
	return int(h.Sum32()%uint32(s.Count)) == s.Index
}

// Shard returns the model of shard s of m: the devices of the feeder groups
// that s owns, in file order and renumbered from 0 (a device's Index is its
// position, as in any Model), and only the links they use, each with only
// those devices. The devices and links are copies; profiles, points,
// labels and the other settings are shared with m, which is unchanged. For
// the whole configuration (0/1) it returns m itself.
func (m *Model) Shard(s Shard) *Model {
	if s.Count <= 1 {
		return m
	}
	keys := shardKeys(m)
	sub := *m
	sub.Links, sub.Devices = nil, nil
	links := map[*Link]*Link{}
	for i, d := range m.Devices {
		if !s.owns(keys[i]) {
			continue
		}
		dc := *d
		dc.Index = uint32(len(sub.Devices))
		if d.Link != nil {
			lc := links[d.Link]
			if lc == nil {
				c := *d.Link
				c.Devices = nil
				lc = &c
				links[d.Link] = lc
			}
			dc.Link = lc
			lc.Devices = append(lc.Devices, &dc)
		}
		sub.Devices = append(sub.Devices, &dc)
	}
	for _, l := range m.Links {
		if lc := links[l]; lc != nil {
			sub.Links = append(sub.Links, lc)
		}
	}
	// The topology is built again for the sub-model's devices: whole
	// feeders, tied feeders together (shardKeys), so it is valid whenever
	// m's is.
	if m.Topology != nil {
		full := m.Topology.Spec()
		spec := topology.Spec{Noun: "device"}
		kept := map[string]bool{}
		for i, n := range full.Nodes {
			if s.owns(keys[i]) {
				spec.Nodes = append(spec.Nodes, n)
				kept[n.Feeder] = true
			}
		}
		for _, f := range full.Feeders {
			if kept[f.ID] {
				spec.Feeders = append(spec.Feeders, f)
			}
		}
		// New cannot fail for a model Load built; a model built in code
		// whose topology does not match its devices gets none.
		sub.Topology, _ = topology.New(spec)
	}
	return &sub
}

// FeederCount returns the number of distinct feeders of m's devices.
func (m *Model) FeederCount() int {
	seen := map[string]bool{}
	for _, d := range m.Devices {
		seen[d.Feeder] = true
	}
	return len(seen)
}

// shardKeys returns, by device, the key its group is placed by: the lowest
// feeder ID of the feeders joined to its own through shared links.
func shardKeys(m *Model) []string {
	feeder := func(d *Device) string {
		if d.Feeder == "" {
			return d.ID
		}
		return d.Feeder
	}
	// A union-find over feeder IDs whose root is always the lowest ID.
	parent := map[string]string{}
	find := func(f string) string {
		for parent[f] != f {
			parent[f] = parent[parent[f]]
			f = parent[f]
		}
		return f
	}
	for _, d := range m.Devices {
		parent[feeder(d)] = feeder(d)
	}
	for _, l := range m.Links {
		for _, d := range l.Devices {
			parent[feeder(d)] = feeder(d)
		}
	}
	union := func(x, y string) {
		a, b := find(x), find(y)
		if b < a {
			a, b = b, a
		}
		parent[b] = a
	}
	for _, l := range m.Links {
		for _, d := range l.Devices {
			union(feeder(l.Devices[0]), feeder(d))
		}
	}
	// A tie joins two feeders: outage logic needs both.
	if m.Topology != nil {
		for _, f := range m.Topology.Feeders {
			for _, t := range f.Ties {
				other := m.Topology.Feeders[t.Switch.Feeder].ID
				_, ok1 := parent[f.ID]
				_, ok2 := parent[other]
				if ok1 && ok2 {
					union(f.ID, other)
				}
			}
		}
	}
	keys := make([]string, len(m.Devices))
	for i, d := range m.Devices {
		keys[i] = find(feeder(d))
	}
	return keys
}
