package grid

import (
	"errors"
	"fmt"

	"github.com/feederd/feederd/internal/config"
)

// FromModel builds the feeders of feederd's configuration: one per distinct
// Device.Feeder, in the order feeders first appear, with the devices as
// nodes in file order (Device.Upstream is the parent, Device.Kind the kind).
// Devices on no feeder are left out. Sections are empty: the configuration
// does not describe load or customers yet.
func FromModel(m *config.Model) ([]*Feeder, error) {
	specs := map[string][]NodeSpec{}
	var order []string
	for _, d := range m.Devices {
		if d.Feeder == "" {
			continue
		}
		if _, seen := specs[d.Feeder]; !seen {
			order = append(order, d.Feeder)
		}
		specs[d.Feeder] = append(specs[d.Feeder], NodeSpec{ID: d.ID, Kind: Kind(d.Kind), Upstream: d.Upstream})
	}
	feeders := make([]*Feeder, 0, len(order))
	var errs []error
	for _, id := range order {
		f, err := NewFeeder(id, specs[id])
		if err != nil {
			errs = append(errs, fmt.Errorf("build feeder %s from %s: %w", id, m.Source, err))
			continue
		}
		feeders = append(feeders, f)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return feeders, nil
}
