package physics

import (
	"testing"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sim/devsrv"
)

func newTestDevice(t testing.TB, id string, unit uint8, p *profile.Profile) *devsrv.Device {
	t.Helper()
	d, err := devsrv.NewDevice(id, unit, p)
	if err != nil {
		t.Fatalf("NewDevice(%s): %v", id, err)
	}
	return d
}
