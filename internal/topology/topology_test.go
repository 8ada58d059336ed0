package topology

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func ptr(n int) *int { return &n }

// twoFeeders is
//
//	F101: BRK ─ REC ─ MTR        sections S1 (BRK, 450), S2 (REC, 600, a hospital)
//	             └─ SEC          S3 (SEC, 200)
//	F102: BRK2 ─ TIE             TIE can feed F101's REC
func twoFeeders() Spec {
	return Spec{Noun: "device", Nodes: []NodeSpec{
		{ID: "BRK", Feeder: "F101", Kind: KindBreaker},
		{ID: "BRK2", Feeder: "F102", Kind: KindBreaker},
		{ID: "REC", Feeder: "F101", Kind: KindRecloser, Upstream: "BRK"},
		{ID: "MTR", Feeder: "F101", Kind: KindMeter, Upstream: "REC"},
		{ID: "TIE", Feeder: "F102", Kind: KindSwitch, Upstream: "BRK2"},
		{ID: "SEC", Feeder: "F101", Kind: KindSectionalizer, Upstream: "REC"},
	}, Feeders: []FeederSpec{{ID: "F101",
		Sections: []SectionSpec{
			{ID: "S1", FedBy: "BRK", Customers: ptr(450)},
			{ID: "S2", FedBy: "REC", Customers: ptr(600), Critical: []CriticalCustomer{{Name: "St Mary's", Kind: CriticalHospital}}},
			{ID: "S3", FedBy: "SEC", Customers: ptr(200)},
		},
		Ties: []TieSpec{{Device: "TIE", To: "REC"}},
	}}}
}

func TestNew(t *testing.T) {
	top, err := New(twoFeeders())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range top.Feeders {
		for _, n := range f.Nodes {
			parent := "-"
			if n.Parent >= 0 {
				parent = f.Nodes[n.Parent].ID
			}
			var ch, secs, ties, tieTo []string
			for _, c := range n.Children {
				ch = append(ch, f.Nodes[c].ID)
			}
			for _, s := range n.Sections {
				secs = append(secs, f.Sections[s].ID)
			}
			for _, r := range n.Ties {
				ties = append(ties, top.Node(r).ID)
			}
			for _, r := range n.TieTo {
				tieTo = append(tieTo, top.Node(r).ID)
			}
			got = append(got, fmt.Sprintf("%s %s %s spec %d up %s children %v sections %v ties %v tie_to %v",
				f.ID, n.ID, n.Kind, n.Spec, parent, ch, secs, ties, tieTo))
		}
	}
	want := []string{
		"F101 BRK breaker spec 0 up - children [REC] sections [S1] ties [] tie_to []",
		"F101 REC recloser spec 2 up BRK children [MTR SEC] sections [S2] ties [TIE] tie_to []",
		"F101 MTR meter spec 3 up REC children [] sections [] ties [] tie_to []",
		"F101 SEC sectionalizer spec 5 up REC children [] sections [S3] ties [] tie_to []",
		"F102 BRK2 breaker spec 1 up - children [TIE] sections [] ties [] tie_to []",
		"F102 TIE switch spec 4 up BRK2 children [] sections [] ties [] tie_to [REC]",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("topology\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	f := top.Feeder("F101")
	if f == nil || f.Customers() != 1250 || f.Root() != 0 || top.Feeder("F102").Customers() != 0 || top.Feeder("F9") != nil {
		t.Fatalf("F101 %+v", f)
	}
	if s := f.Sections[1]; s.ID != "S2" || s.FedBy != 1 || s.Customers != 600 || len(s.Critical) != 1 || s.Critical[0] != (CriticalCustomer{"St Mary's", CriticalHospital}) {
		t.Fatalf("S2 %+v", s)
	}
	if r, ok := top.Ref(4); !ok || r != (Ref{1, 1}) {
		t.Fatalf("Ref(4) = %v, %v", r, ok)
	}
	if r, ok := top.Lookup("SEC"); !ok || r != (Ref{0, 3}) {
		t.Fatalf("Lookup(SEC) = %v, %v", r, ok)
	}
	if _, ok := top.Ref(6); ok {
		t.Fatal("Ref(6) found a node")
	}
	rec, _ := f.Lookup("REC")
	var down, path []string
	for _, n := range f.Downstream(rec) {
		down = append(down, f.Nodes[n].ID)
	}
	for _, n := range f.PathToRoot(3) {
		path = append(path, f.Nodes[n].ID)
	}
	if !slices.Equal(down, []string{"REC", "MTR", "SEC"}) || !slices.Equal(path, []string{"SEC", "REC", "BRK"}) {
		t.Fatalf("Downstream(REC) %v, PathToRoot(SEC) %v", down, path)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Spec)
		want   []string
		// first: the path of the earlier definition of a duplicate, per error.
		first []string
	}{
		{"cycle", func(s *Spec) {
			s.Nodes[2].Upstream = "SEC" // REC -> SEC -> REC
		}, []string{"nodes[2].upstream: upstream cycle REC -> SEC -> REC"}, nil},
		{"self", func(s *Spec) { s.Nodes[3].Upstream = "MTR" },
			[]string{"nodes[3].upstream: upstream cycle MTR -> MTR"}, nil},
		{"two roots", func(s *Spec) {
			s.Nodes[3].Upstream = ""
			s.Nodes[5].Upstream = ""
		}, []string{"nodes[3].upstream: feeder F101 has 3 devices without upstream (BRK, MTR, SEC): exactly one is its source"}, nil},
		{"no root: a cycle", func(s *Spec) { s.Nodes[1].Upstream = "TIE" },
			[]string{"nodes[1].upstream: upstream cycle BRK2 -> TIE -> BRK2"}, nil},
		{"unknown upstream", func(s *Spec) { s.Nodes[3].Upstream = "NOPE" },
			[]string{`nodes[3].upstream: unknown device "NOPE"`}, nil},
		{"upstream on another feeder", func(s *Spec) { s.Nodes[4].Upstream = "REC" },
			[]string{`nodes[4].upstream: device "REC" is on feeder "F101", not "F102"`}, nil},
		{"duplicate id across feeders", func(s *Spec) { s.Nodes[4].ID = "REC" },
			[]string{`nodes[4].id: duplicate device id "REC" (first at nodes[2].id)`, `feeders[0].ties[0].device: unknown device "TIE"`},
			[]string{"nodes[2].id", ""}},
		{"node without id or feeder", func(s *Spec) {
			s.Nodes[3].ID = ""
			s.Nodes[5].Feeder = ""
		}, []string{"nodes[3].id: required", "nodes[5].feeder: required"}, nil},
		{"unfed section", func(s *Spec) { s.Feeders[0].Sections[2].FedBy = "" },
			[]string{"feeders[0].sections[2].fed_by: required"}, nil},
		{"section fed from another feeder", func(s *Spec) { s.Feeders[0].Sections[2].FedBy = "TIE" },
			[]string{`feeders[0].sections[2].fed_by: device "TIE" is on feeder "F102", not "F101"`}, nil},
		{"section duplicate, customers missing or negative", func(s *Spec) {
			s.Feeders[0].Sections[1].ID = "S1"
			s.Feeders[0].Sections[0].Customers = nil
			s.Feeders[0].Sections[2].Customers = ptr(-3)
		}, []string{
			"feeders[0].sections[0].customers: required",
			`feeders[0].sections[1].id: duplicate section id "S1" (first at feeders[0].sections[0].id)`,
			"feeders[0].sections[2].customers: -3 is negative",
		}, []string{"", "feeders[0].sections[0].id", ""}},
		{"customer in two sections", func(s *Spec) {
			s.Feeders[0].Sections[2].Critical = []CriticalCustomer{{Name: "St Mary's", Kind: CriticalWater}}
		}, []string{`feeders[0].sections[2].critical[0].name: customer "St Mary's" is already in a section (feeders[0].sections[1].critical[0].name): a customer is in one section only`},
			[]string{"feeders[0].sections[1].critical[0].name"}},
		{"critical customers", func(s *Spec) {
			s.Feeders[0].Sections[0].Critical = []CriticalCustomer{{Kind: "pump"}}
			s.Feeders[0].Sections[2].Customers = ptr(0)
			s.Feeders[0].Sections[2].Critical = []CriticalCustomer{{Name: "Pump 4", Kind: CriticalWater}}
		}, []string{
			"feeders[0].sections[0].critical[0].name: required",
			`feeders[0].sections[0].critical[0].kind: unknown kind "pump" (want hospital | life_support | water | emergency | other)`,
			"feeders[0].sections[2].critical: 1 critical customers but 0 customers",
		}, nil},
		{"tie to unknown device", func(s *Spec) { s.Feeders[0].Ties[0].To = "NOPE" },
			[]string{`feeders[0].ties[0].to: unknown device "NOPE"`}, nil},
		{"tie from unknown device", func(s *Spec) { s.Feeders[0].Ties[0].Device = "NOPE" },
			[]string{`feeders[0].ties[0].device: unknown device "NOPE"`}, nil},
		{"tie within a feeder", func(s *Spec) { s.Feeders[0].Ties[0].Device = "MTR" },
			[]string{`feeders[0].ties[0].device: device "MTR" is on this feeder: a tie comes from another feeder`}, nil},
		{"tie to another feeder", func(s *Spec) { s.Feeders[0].Ties[0] = TieSpec{Device: "REC", To: "BRK2"} },
			[]string{`feeders[0].ties[0].device: device "REC" is on this feeder: a tie comes from another feeder`,
				`feeders[0].ties[0].to: device "BRK2" is on feeder "F102", not "F101"`}, nil},
		{"tie missing both ends", func(s *Spec) { s.Feeders[0].Ties[0] = TieSpec{} },
			[]string{"feeders[0].ties[0].device: required", "feeders[0].ties[0].to: required"}, nil},
		{"feeder specs", func(s *Spec) {
			s.Feeders = append(s.Feeders, FeederSpec{ID: "F999"}, FeederSpec{}, FeederSpec{ID: "F101"})
		}, []string{
			`feeders[1].id: no device is on feeder "F999"`,
			"feeders[2].id: required",
			`feeders[3].id: duplicate feeder "F101" (first at feeders[0].id)`,
		}, []string{"", "", "feeders[0].id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := twoFeeders()
			tt.change(&spec)
			top, err := New(spec)
			if top != nil || err == nil {
				t.Fatalf("New = %v, %v", top, err)
			}
			if got := err.Error(); got != strings.Join(tt.want, "\n") {
				t.Fatalf("error\n%s\nwant\n%s", got, strings.Join(tt.want, "\n"))
			}
			var es Errors
			if !errors.As(err, &es) || len(es) != len(tt.want) {
				t.Fatalf("%T %v is not %d Errors", err, err, len(tt.want))
			}
			for k, e := range es {
				want := ""
				if tt.first != nil {
					want = tt.first[k]
				}
				if got := PathString(e.First); got != want {
					t.Errorf("error %d: first %q, want %q", k, got, want)
				}
			}
		})
	}
}

// TestLocate: a loader renders where a duplicate was first defined.
func TestLocate(t *testing.T) {
	spec := twoFeeders()
	spec.Noun = ""
	spec.Nodes[3].ID = "BRK"
	spec.Locate = func(p []any) string { return "line " + fmt.Sprint(10+p[1].(int)) }
	_, err := New(spec)
	want := `nodes[3].id: duplicate node id "BRK" (first at line 10)`
	if err == nil || err.Error() != want {
		t.Fatalf("New: %v, want %s", err, want)
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
}

// TestSpecRoundTrip: New(t.Spec()) builds t again.
func TestSpecRoundTrip(t *testing.T) {
	top, err := New(twoFeeders())
	if err != nil {
		t.Fatal(err)
	}
	again, err := New(top.Spec())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(top, again) {
		t.Fatalf("New(Spec()) =\n%+v\nwant\n%+v", again, top)
	}
}
