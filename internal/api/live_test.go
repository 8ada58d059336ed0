package api

import (
	"slices"
	"testing"

	"github.com/feederd/feederd/internal/grid"
	"github.com/feederd/feederd/internal/topology"
)

// TestBoardOrder: the board puts the largest impact first: customers out,
// then critical customers, then the oldest.
func TestBoardOrder(t *testing.T) {
	hosp := []topology.CriticalCustomer{{Name: "H", Kind: topology.CriticalHospital}}
	os := []grid.Outage{
		{ID: "small-old", CustomersOut: 10, Start: 1},
		{ID: "big", CustomersOut: 500, Start: 5},
		{ID: "mid-critical", CustomersOut: 100, Critical: hosp, Start: 9},
		{ID: "mid-new", CustomersOut: 100, Start: 8},
		{ID: "mid-old", CustomersOut: 100, Start: 2},
		{ID: "none", CustomersOut: 0, Start: 0},
	}
	sortOutages(os)
	var got []string
	for _, o := range os {
		got = append(got, o.ID)
	}
	if want := []string{"big", "mid-critical", "mid-old", "mid-new", "small-old", "none"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}
