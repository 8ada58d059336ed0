package grid

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/feederd/feederd/internal/config"
)

// f101 is
//
//	BRK ─ S1 ─ REC ─ S2 ─ S3 ─ MTR
//	       │          └─ SEC ─ S4
//	       └─ SNS
func f101(t *testing.T) *Feeder {
	t.Helper()
	f, err := NewFeeder("F101", []NodeSpec{
		{ID: "BRK", Kind: KindBreaker},
		{ID: "S1", Kind: KindSection, Upstream: "BRK", Section: Section{LoadKW: 900, Customers: 450}},
		{ID: "REC", Kind: KindRecloser, Upstream: "S1"},
		{ID: "S2", Kind: KindSection, Upstream: "REC", Section: Section{LoadKW: 1200, Customers: 600, Critical: 1}},
		{ID: "S3", Kind: KindSection, Upstream: "S2", Section: Section{LoadKW: 800, Customers: 380}},
		{ID: "MTR", Kind: KindMeter, Upstream: "S3", Section: Section{LoadKW: 30, Customers: 1}},
		{ID: "SEC", Kind: KindSectionalizer, Upstream: "S2"},
		{ID: "S4", Kind: KindSection, Upstream: "SEC", Section: Section{LoadKW: 500, Customers: 200, Critical: 2}},
		{ID: "SNS", Kind: KindSensor, Upstream: "S1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func ids(f *Feeder, idx []int) []string {
	out := make([]string, len(idx))
	for i, n := range idx {
		out[i] = f.Nodes[n].ID
	}
	return out
}

func TestFeederWalks(t *testing.T) {
	f := f101(t)
	if r := f.Root(); f.Nodes[r].ID != "BRK" || f.Nodes[r].Parent != -1 {
		t.Fatalf("root %d %+v", r, f.Nodes[r])
	}
	tests := []struct {
		node       string
		downstream []string
		path       []string
		children   []string
	}{
		{"BRK", []string{"BRK", "S1", "REC", "S2", "S3", "MTR", "SEC", "S4", "SNS"}, []string{"BRK"}, []string{"S1"}},
		{"S1", []string{"S1", "REC", "S2", "S3", "MTR", "SEC", "S4", "SNS"}, []string{"S1", "BRK"}, []string{"REC", "SNS"}},
		{"S2", []string{"S2", "S3", "MTR", "SEC", "S4"}, []string{"S2", "REC", "S1", "BRK"}, []string{"S3", "SEC"}},
		{"S4", []string{"S4"}, []string{"S4", "SEC", "S2", "REC", "S1", "BRK"}, nil},
		{"SNS", []string{"SNS"}, []string{"SNS", "S1", "BRK"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.node, func(t *testing.T) {
			i, ok := f.Lookup(tt.node)
			if !ok || f.Nodes[i].ID != tt.node {
				t.Fatalf("Lookup(%s) = %d, %v", tt.node, i, ok)
			}
			if got := ids(f, f.Downstream(i)); !slices.Equal(got, tt.downstream) {
				t.Errorf("Downstream = %v, want %v", got, tt.downstream)
			}
			if got := ids(f, f.PathToRoot(i)); !slices.Equal(got, tt.path) {
				t.Errorf("PathToRoot = %v, want %v", got, tt.path)
			}
			if got := ids(f, f.Nodes[i].Children); !slices.Equal(got, tt.children) {
				t.Errorf("Children = %v, want %v", got, tt.children)
			}
		})
	}
	if _, ok := f.Lookup("NOPE"); ok {
		t.Fatal("Lookup(NOPE) found a node")
	}
	i, _ := f.Lookup("S2")
	if got := f.Load(i); got != (Section{LoadKW: 2530, Customers: 1181, Critical: 3}) {
		t.Fatalf("Load(S2) = %+v", got)
	}
}

func TestKind(t *testing.T) {
	tests := []struct {
		k                            Kind
		valid, switching, protective bool
	}{
		{KindBreaker, true, true, true},
		{KindRecloser, true, true, true},
		{KindSectionalizer, true, true, false},
		{KindSwitch, true, true, false},
		{KindSensor, true, false, false},
		{KindMeter, true, false, false},
		{KindSection, true, false, false},
		{"fuse", false, false, false},
	}
	for _, tt := range tests {
		if tt.k.Valid() != tt.valid || tt.k.Switching() != tt.switching || tt.k.Protective() != tt.protective {
			t.Errorf("%s: valid %v switching %v protective %v", tt.k, tt.k.Valid(), tt.k.Switching(), tt.k.Protective())
		}
	}
	// The device kinds are feederd's config kinds.
	for _, k := range []config.DeviceKind{config.KindBreaker, config.KindRecloser, config.KindSectionalizer, config.KindSwitch, config.KindSensor, config.KindMeter} {
		if !Kind(k).Valid() {
			t.Errorf("config kind %s is not a grid kind", k)
		}
	}
}

func TestNewFeederErrors(t *testing.T) {
	tests := []struct {
		name  string
		id    string
		specs []NodeSpec
		want  []string
		// where: node index and key of every error
		where [][2]any
	}{
		{"no nodes", "F1", nil, []string{"feeder F1: no nodes"}, [][2]any{{-1, ""}}},
		{"no feeder id", "", []NodeSpec{{ID: "A", Kind: KindBreaker}}, []string{"feeder : feeder has no ID"}, [][2]any{{-1, ""}}},
		{"missing id", "F1", []NodeSpec{{ID: "A", Kind: KindBreaker}, {Kind: KindMeter, Upstream: "A"}},
			[]string{"feeder F1: node 1 id: missing"}, [][2]any{{1, "id"}}},
		{"duplicate id", "F1", []NodeSpec{{ID: "A", Kind: KindBreaker}, {ID: "A", Kind: KindMeter, Upstream: "A"}},
			[]string{"feeder F1: node 1 id: node A is defined twice"}, [][2]any{{1, "id"}}},
		{"bad kind", "F1", []NodeSpec{{ID: "A", Kind: "fuse"}},
			[]string{`feeder F1: node 0 kind: "fuse" is not one of breaker, recloser, sectionalizer, switch, sensor, meter, section`}, [][2]any{{0, "kind"}}},
		{"unknown upstream", "F1", []NodeSpec{{ID: "A", Kind: KindBreaker}, {ID: "B", Kind: KindMeter, Upstream: "Z"}},
			[]string{`feeder F1: node 1 upstream: no node "Z" on feeder F1`}, [][2]any{{1, "upstream"}}},
		{"two roots", "F1", []NodeSpec{{ID: "A", Kind: KindBreaker}, {ID: "B", Kind: KindBreaker}, {ID: "C", Kind: KindBreaker}},
			[]string{"feeder F1: node 1 upstream: 3 nodes without upstream (A, B, C): exactly one is the source"}, [][2]any{{1, "upstream"}}},
		{"cycle", "F1", []NodeSpec{{ID: "A", Kind: KindBreaker}, {ID: "B", Kind: KindSection, Upstream: "C"}, {ID: "C", Kind: KindSection, Upstream: "D"}, {ID: "D", Kind: KindSection, Upstream: "B"}},
			[]string{"feeder F1: node 1 upstream: upstream cycle B -> C -> D -> B"}, [][2]any{{1, "upstream"}}},
		{"self", "F1", []NodeSpec{{ID: "A", Kind: KindBreaker}, {ID: "B", Kind: KindSection, Upstream: "B"}},
			[]string{"feeder F1: node 1 upstream: upstream cycle B -> B"}, [][2]any{{1, "upstream"}}},
		{"all in a cycle", "F1", []NodeSpec{{ID: "A", Kind: KindBreaker, Upstream: "B"}, {ID: "B", Kind: KindSection, Upstream: "A"}},
			[]string{"feeder F1: node 0 upstream: upstream cycle A -> B -> A"}, [][2]any{{0, "upstream"}}},
		{"bad sections", "F1", []NodeSpec{
			{ID: "A", Kind: KindBreaker, Section: Section{LoadKW: -1}},
			{ID: "B", Kind: KindSection, Upstream: "A", Section: Section{Customers: -2}},
			{ID: "C", Kind: KindSection, Upstream: "A", Section: Section{Customers: 2, Critical: 3}},
		}, []string{
			"feeder F1: node 0 section: load -1 kW is negative or not a number",
			"feeder F1: node 1 section: customers -2, critical 0: negative",
			"feeder F1: node 2 section: 3 critical customers of 2 customers",
		}, [][2]any{{0, "section"}, {1, "section"}, {2, "section"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewFeeder(tt.id, tt.specs)
			if f != nil || err == nil {
				t.Fatalf("NewFeeder = %v, %v", f, err)
			}
			if got := err.Error(); got != strings.Join(tt.want, "\n") {
				t.Fatalf("error\n%s\nwant\n%s", got, strings.Join(tt.want, "\n"))
			}
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) {
				t.Fatalf("%T is not a joined error", err)
			}
			for k, e := range joined.Unwrap() {
				var ge *Error
				if !errors.As(e, &ge) || ge.Node != tt.where[k][0] || ge.Key != tt.where[k][1] || ge.Feeder != tt.id {
					t.Errorf("error %d: %#v, want node %v key %q", k, e, tt.where[k][0], tt.where[k][1])
				}
			}
		})
	}
}

func TestFromModel(t *testing.T) {
	dev := func(id, feeder, upstream string, kind config.DeviceKind) *config.Device {
		return &config.Device{ID: id, Feeder: feeder, Upstream: upstream, Kind: kind}
	}
	m := &config.Model{Source: "feederd.yaml", Devices: []*config.Device{
		dev("F102-BRK", "F102", "", config.KindBreaker),
		dev("F101-BRK", "F101", "", config.KindBreaker),
		dev("LAB", "", "", config.KindMeter),
		dev("F101-REC", "F101", "F101-BRK", config.KindRecloser),
		dev("F102-MTR", "F102", "F102-BRK", config.KindMeter),
		dev("F101-MTR", "F101", "F101-REC", config.KindMeter),
	}}
	fs, err := FromModel(m)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		for _, n := range f.Nodes {
			parent := "-"
			if n.Parent >= 0 {
				parent = f.Nodes[n.Parent].ID
			}
			got = append(got, f.ID+" "+n.ID+" "+string(n.Kind)+" "+parent)
		}
	}
	want := []string{
		"F102 F102-BRK breaker -",
		"F102 F102-MTR meter F102-BRK",
		"F101 F101-BRK breaker -",
		"F101 F101-REC recloser F101-BRK",
		"F101 F101-MTR meter F101-REC",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("feeders\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	m.Devices = append(m.Devices, dev("F101-X", "F101", "", config.KindSwitch))
	_, err = FromModel(m)
	want1 := "build feeder F101 from feederd.yaml: feeder F101: node 3 upstream: 2 nodes without upstream (F101-BRK, F101-X): exactly one is the source"
	if err == nil || err.Error() != want1 {
		t.Fatalf("FromModel with two sources: %v, want %q", err, want1)
	}
}
