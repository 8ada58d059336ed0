package topology

import (
	"fmt"
	"testing"
)

// fleetSpec is feeders × perFeeder devices: each feeder a breaker with
// chains of ten below it, one section of 100 customers per device, and a
// tie from every feeder to the next.
func fleetSpec(feeders, perFeeder int) Spec {
	s := Spec{Noun: "device"}
	for f := range feeders {
		fid := fmt.Sprintf("F%d", f)
		fs := FeederSpec{ID: fid}
		for d := range perFeeder {
			id := fmt.Sprintf("F%d-D%d", f, d)
			n := NodeSpec{ID: id, Feeder: fid, Kind: KindSwitch}
			switch {
			case d == 0:
				n.Kind = KindBreaker
			case d%10 == 1:
				n.Upstream = fmt.Sprintf("F%d-D0", f)
			default:
				n.Upstream = fmt.Sprintf("F%d-D%d", f, d-1)
			}
			s.Nodes = append(s.Nodes, n)
			c := 100
			fs.Sections = append(fs.Sections, SectionSpec{ID: id + "-S", FedBy: id, Customers: &c})
		}
		if f > 0 {
			fs.Ties = []TieSpec{{Device: fmt.Sprintf("F%d-D%d", f-1, perFeeder-1), To: fmt.Sprintf("F%d-D%d", f, perFeeder-1)}}
		}
		s.Feeders = append(s.Feeders, fs)
	}
	return s
}

// BenchmarkNew: checking and building the topology of a 10,000-device
// configuration, which Load and every reload pay once.
func BenchmarkNew(b *testing.B) {
	spec := fleetSpec(100, 100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(spec); err != nil {
			b.Fatal(err)
		}
	}
}
