package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/grid"
	"github.com/feederd/feederd/internal/topology"
)

// outageSnapshot is what readers see of a shard's outage logic.
type outageSnapshot struct {
	active  []grid.Outage
	indices map[string]grid.Accumulator
}

func (sh *shard) publishOutages() {
	sh.outSnap.Store(&outageSnapshot{active: sh.out.Active(), indices: sh.out.Indices()})
	sh.outChanged = false
}

// Outages returns the active outages of every shard, as of their last tick.
func (p *Pipeline) Outages() []grid.Outage {
	var out []grid.Outage
	for _, sh := range p.shards {
		out = append(out, sh.outSnap.Load().active...)
	}
	return out
}

// Reliability returns the IEEE 1366 sums of every feeder, as of the last
// tick.
func (p *Pipeline) Reliability() map[string]grid.Accumulator {
	out := map[string]grid.Accumulator{}
	for _, sh := range p.shards {
		for f, a := range sh.outSnap.Load().indices {
			out[f] = a
		}
	}
	return out
}

// assignShards gives every feeder a shard, keeping tied feeders together:
// outage logic needs both sides of a tie switch. A group of tied feeders
// keeps the shard prev gave one of them (the first in device order); the
// other groups go, in the order their feeders first appear, to the shard
// with the fewest groups (round robin when prev is nil).
func assignShards(devs []Device, top *topology.Topology, shards int, prev map[string]int) map[string]int {
	group := map[string]string{}
	var find func(string) string
	find = func(f string) string {
		if g, ok := group[f]; ok && g != f {
			r := find(g)
			group[f] = r
			return r
		}
		return f
	}
	for _, f := range top.Feeders {
		for _, t := range f.Ties {
			a, b := find(f.ID), find(top.Feeders[t.Switch.Feeder].ID)
			if a != b {
				group[b] = a
			}
		}
	}
	// The groups with their feeders, in the order feeders first appear.
	var groups []string
	members := map[string][]string{}
	seen := map[string]bool{}
	for i := range devs {
		f := devs[i].Feeder
		if seen[f] {
			continue
		}
		seen[f] = true
		g := find(f)
		if members[g] == nil {
			groups = append(groups, g)
		}
		members[g] = append(members[g], f)
	}
	groupShard := map[string]int{}
	load := make([]int, shards)
	for _, g := range groups {
		for _, f := range members[g] {
			if s, ok := prev[f]; ok && s < shards {
				groupShard[g] = s
				load[s]++
				break
			}
		}
	}
	for _, g := range groups {
		if _, ok := groupShard[g]; ok {
			continue
		}
		s := 0
		for i := range load {
			if load[i] < load[s] {
				s = i
			}
		}
		groupShard[g] = s
		load[s]++
	}
	out := make(map[string]int, len(seen))
	for _, g := range groups {
		for _, f := range members[g] {
			out[f] = groupShard[g]
		}
	}
	return out
}

// outageCollector exposes outages and IEEE 1366 indices from the shards'
// snapshots: per feeder, a bounded set of series.
type outageCollector struct {
	p                                     *Pipeline
	active, out, critical, served, relIdx *prometheus.Desc
	sysIdx                                *prometheus.Desc
}

func newOutageCollector(p *Pipeline) *outageCollector {
	return &outageCollector{
		p: p,
		active: prometheus.NewDesc("feederd_outages_active",
			"Outages in progress on the feeder.", []string{"feeder"}, nil),
		out: prometheus.NewDesc("feederd_customers_out",
			"Customers of the feeder out now.", []string{"feeder"}, nil),
		critical: prometheus.NewDesc("feederd_critical_customers_out",
			"Critical customers (hospital, life support, water, ...) of the feeder out now.", []string{"feeder"}, nil),
		served: prometheus.NewDesc("feederd_customers_served",
			"Customers the feeder serves (IEEE 1366 NT), from the configuration.", []string{"feeder"}, nil),
		relIdx: prometheus.NewDesc("feederd_reliability_index",
			"IEEE 1366 index of the feeder over the calendar year (UTC): saifi, saidi and caidi (minutes), maifi, maifie.",
			[]string{"feeder", "index"}, nil),
		sysIdx: prometheus.NewDesc("feederd_system_reliability_index",
			"IEEE 1366 index over every feeder this instance polls, calendar year (UTC).",
			[]string{"index"}, nil),
	}
}

func (c *outageCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.active, c.out, c.critical, c.served, c.relIdx, c.sysIdx} {
		ch <- d
	}
}

func (c *outageCollector) Collect(ch chan<- prometheus.Metric) {
	type counts struct{ active, out, critical int }
	per := map[string]*counts{}
	rel := c.p.Reliability()
	for f := range rel {
		per[f] = &counts{}
	}
	for _, o := range c.p.Outages() {
		n := per[o.Feeder]
		if n == nil {
			n = &counts{}
			per[o.Feeder] = n
		}
		n.active++
		n.out += o.CustomersOut
		n.critical += len(o.Critical)
	}
	for f, n := range per {
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(n.active), f)
		ch <- prometheus.MustNewConstMetric(c.out, prometheus.GaugeValue, float64(n.out), f)
		ch <- prometheus.MustNewConstMetric(c.critical, prometheus.GaugeValue, float64(n.critical), f)
	}
	var sys grid.Accumulator
	for f, a := range rel {
		ch <- prometheus.MustNewConstMetric(c.served, prometheus.GaugeValue, float64(a.NT), f)
		emitIndices(ch, c.relIdx, a.Indices(), f)
		sys = sys.Add(a)
	}
	emitIndices(ch, c.sysIdx, sys.Indices())
}

func emitIndices(ch chan<- prometheus.Metric, d *prometheus.Desc, ix grid.Indices, labels ...string) {
	for _, v := range []struct {
		name string
		v    float64
	}{{"saifi", ix.SAIFI}, {"saidi", ix.SAIDI}, {"caidi", ix.CAIDI}, {"maifi", ix.MAIFI}, {"maifie", ix.MAIFIe}} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v.v, append(labels, v.name)...)
	}
}
