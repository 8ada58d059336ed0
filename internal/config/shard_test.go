package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseShard(t *testing.T) {
	tests := []struct {
		in   string
		want Shard
		err  string
	}{
		{"0/2", Shard{0, 2}, ""},
		{"1/2", Shard{1, 2}, ""},
		{"0/1", Shard{0, 1}, ""},
		{"6/7", Shard{6, 7}, ""},
		{"3/2", Shard{}, "shard 3/2: the index must be in 0..1"},
		{"2/2", Shard{}, "shard 2/2: the index must be in 0..1"},
		{"-1/2", Shard{}, "shard -1/2: the index must be in 0..1"},
		{"0/0", Shard{}, "shard 0/0: the count must be at least 1"},
		{"0/-3", Shard{}, "shard 0/-3: the count must be at least 1"},
		{"a/b", Shard{}, `shard "a/b": want i/n, two integers with 0 <= i < n, e.g. 0/2`},
		{"1", Shard{}, `shard "1": want i/n, two integers with 0 <= i < n, e.g. 0/2`},
		{"", Shard{}, `shard "": want i/n, two integers with 0 <= i < n, e.g. 0/2`},
		{"1/2/3", Shard{}, `shard "1/2/3": want i/n, two integers with 0 <= i < n, e.g. 0/2`},
		{" 0/2", Shard{}, `shard " 0/2": want i/n, two integers with 0 <= i < n, e.g. 0/2`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseShard(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("ParseShard(%q) = %v, %v; want error %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseShard(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			if got.String() != tc.in {
				t.Errorf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
}

// shardSite has eight feeders of two devices each, every device on a link
// of its own; feeders G1 and G2 behind one gateway; and feeder S1 on a
// serial line.
func shardSite() string {
	var b strings.Builder
	b.WriteString("profiles: [relay.yaml]\nlinks:\n")
	for f := 1; f <= 8; f++ {
		fmt.Fprintf(&b, "  - {id: l-F%d-A, url: \"tcp://f%da:502\"}\n  - {id: l-F%d-B, url: \"tcp://f%db:502\"}\n", f, f, f, f)
	}
	b.WriteString(`  - {id: gw, url: "tcp://gw:502"}
  - {id: bus, url: "rtu:///dev/ttyS0", serial: {baud: 19200, data_bits: 8, parity: N, stop_bits: 1}}
devices:
`)
	for f := 1; f <= 8; f++ {
		fmt.Fprintf(&b, "  - {id: F%d-A, link: l-F%d-A, unit: 1, profile: relay, feeder: F%d, labels: {substation: s%d}}\n", f, f, f, f%3)
		fmt.Fprintf(&b, "  - {id: F%d-B, link: l-F%d-B, unit: 1, profile: relay, feeder: F%d, upstream: F%d-A}\n", f, f, f, f)
	}
	b.WriteString(`  - {id: G1-A, link: gw, unit: 1, profile: relay, feeder: G1}
  - {id: G2-A, link: gw, unit: 2, profile: relay, feeder: G2}
  - {id: G1-B, link: gw, unit: 3, profile: relay, feeder: G1, upstream: G1-A}
  - {id: S1-A, link: bus, unit: 1, profile: relay, feeder: S1}
`)
	return b.String()
}

func loadShardSite(t *testing.T) *Model {
	t.Helper()
	m, err := Load("site.yaml", LoadOptions{ReadFile: memFS(map[string]string{"site.yaml": shardSite(), "relay.yaml": inlineRelay})})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fnv1a is the 32-bit FNV-1a hash written out, so that a change of the
// hash Shard uses, which would move feeders between instances of a running
// fleet, fails this test.
func fnv1a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// TestModelShard: for n = 1..4, the n shards of a model hold every device
// exactly once, keep each feeder whole and the feeders of a shared link
// together, place each group by the FNV-1a hash of its lowest feeder ID, and
// are models in their own right: indexes are positions, links hold exactly
// their devices, no link is left without one. The model is unchanged.
func TestModelShard(t *testing.T) {
	m := loadShardSite(t)
	before := layout(m)
	group := map[string]string{"G2": "G1"} // feeder -> the ID its group is placed by
	for n := 1; n <= 4; n++ {
		owner := map[string]int{} // device -> shard
		for i := range n {
			sub := m.Shard(Shard{i, n})
			if n == 1 && sub != m {
				t.Errorf("Shard(0/1) copied the model")
			}
			checkInvariants(t, fmt.Sprintf("shard %d/%d", i, n), sub)
			for _, d := range sub.Devices {
				if prev, dup := owner[d.ID]; dup {
					t.Errorf("n=%d: %s is in shards %d and %d", n, d.ID, prev, i)
				}
				owner[d.ID] = i
				key := d.Feeder
				if g := group[key]; g != "" {
					key = g
				}
				if want := int(fnv1a(key) % uint32(n)); want != i {
					t.Errorf("n=%d: %s (feeder %s) is in shard %d, want %d", n, d.ID, d.Feeder, i, want)
				}
				orig := m.Devices[slices.IndexFunc(m.Devices, func(o *Device) bool { return o.ID == d.ID })]
				a, b := *orig, *d
				a.Index, a.Link, b.Index, b.Link = 0, nil, 0, nil
				if !reflect.DeepEqual(a, b) {
					t.Errorf("n=%d: %s differs from the model's device beyond Index and Link", n, d.ID)
				}
				if d.Link.ID != orig.Link.ID || d.Link.URL != orig.Link.URL || d.Link.Serial != orig.Link.Serial {
					t.Errorf("n=%d: %s's link is %+v, want a copy of %+v", n, d.ID, d.Link, orig.Link)
				}
			}
		}
		if len(owner) != len(m.Devices) {
			t.Errorf("n=%d: the shards hold %d of %d devices", n, len(owner), len(m.Devices))
		}
		if owner["G1-A"] != owner["G2-A"] {
			t.Errorf("n=%d: G1 and G2 share link gw but are in shards %d and %d", n, owner["G1-A"], owner["G2-A"])
		}
	}
	if after := layout(m); after != before {
		t.Errorf("Shard changed the model:\n%s\nwant\n%s", after, before)
	}
	// Pinned: a different hash or key would move feeders between running
	// instances.
	var got []string
	for _, f := range []string{"F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "G1", "S1"} {
		for i := range 2 {
			if slices.ContainsFunc(m.Shard(Shard{i, 2}).Devices, func(d *Device) bool { return d.Feeder == f }) {
				got = append(got, fmt.Sprintf("%s:%d", f, i))
			}
		}
	}
	if want := "F1:0 F2:1 F3:0 F4:1 F5:0 F6:1 F7:0 F8:1 G1:1 S1:1"; strings.Join(got, " ") != want {
		t.Errorf("feeders of 0/2 and 1/2: %s, want %s", strings.Join(got, " "), want)
	}
}

// checkInvariants checks the invariants every consumer of a Model relies on.
func checkInvariants(t *testing.T, name string, m *Model) {
	t.Helper()
	onLink := map[*Device]bool{}
	for _, l := range m.Links {
		if len(l.Devices) == 0 {
			t.Errorf("%s: link %s has no devices", name, l.ID)
		}
		for _, d := range l.Devices {
			if d.Link != l {
				t.Errorf("%s: %s is on link %s's list but points to %p", name, d.ID, l.ID, d.Link)
			}
			onLink[d] = true
		}
	}
	ids := map[string]bool{}
	for i, d := range m.Devices {
		ids[d.ID] = true
		if d.Index != uint32(i) {
			t.Errorf("%s: %s has Index %d at position %d", name, d.ID, d.Index, i)
		}
		if !onLink[d] {
			t.Errorf("%s: %s is on no link's list", name, d.ID)
		}
	}
	for _, d := range m.Devices {
		if d.Upstream != "" && !ids[d.Upstream] {
			t.Errorf("%s: %s's upstream %s is not in the model", name, d.ID, d.Upstream)
		}
	}
}

func layout(m *Model) string {
	var b strings.Builder
	for _, l := range m.Links {
		fmt.Fprintf(&b, "%s:", l.ID)
		for _, d := range l.Devices {
			fmt.Fprintf(&b, " %s@%d", d.ID, d.Index)
		}
		b.WriteString("\n")
	}
	for _, d := range m.Devices {
		fmt.Fprintf(&b, "%s@%d->%s ", d.ID, d.Index, d.Link.ID)
	}
	return b.String()
}

// TestModelShardKnowsEveryField: Shard copies the Model and filters
// Devices and Links. A new field that refers to devices or links (an index
// by device, a topology) must be filtered too; this test fails until its
// author has looked at Shard and added the field here.
func TestModelShardKnowsEveryField(t *testing.T) {
	var got []string
	for f := range reflect.TypeFor[Model]().Fields() {
		got = append(got, f.Name)
	}
	want := []string{"Source", "Poll", "Influx", "HTTP", "Detect", "Pipeline", "Alerting", "Profiles", "Links", "Devices", "Topology"}
	if !slices.Equal(got, want) {
		t.Errorf("Model's fields are %v; Shard was written for %v: check that it filters whatever refers to devices or links, then update this list", got, want)
	}
}

// TestShardKeepsTiedFeedersTogether: the demo's TIE-12 joins F101 and F102,
// so whatever n, one instance has both.
func TestShardKeepsTiedFeedersTogether(t *testing.T) {
	m, err := Load("../../configs/demo.yaml", LoadOptions{Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	for n := 2; n <= 5; n++ {
		for i := range n {
			sub := m.Shard(Shard{Index: i, Count: n})
			if c := sub.FeederCount(); c != 0 && c != 2 {
				t.Errorf("shard %d/%d has %d of the 2 tied feeders", i, n, c)
			}
			if c := sub.FeederCount(); c == 2 {
				top := sub.Topology
				if len(top.Feeders) != 2 || len(top.Feeders[0].Ties) != 1 || top.Node(top.Feeders[0].Ties[0].Switch).Spec != 6 ||
					top.Feeders[0].Customers()+top.Feeders[1].Customers() != m.Topology.Feeders[0].Customers()+m.Topology.Feeders[1].Customers() {
					t.Errorf("shard %d/%d: topology not carried over: %+v", i, n, top)
				}
			}
		}
	}
}
