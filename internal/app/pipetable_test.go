package app

import (
	"reflect"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/profile"
)

func TestDevicesFromModel(t *testing.T) {
	p := &profile.Profile{Name: "meter"}
	m := &config.Model{Devices: []*config.Device{
		{Index: 0, ID: "BRK", Feeder: "F1", Interval: time.Second, NominalVoltage: 7200, PTRatio: 60, Profile: p,
			Points: []profile.Point{{Name: "closed", Role: profile.RoleBreakerClosed}, {Name: "va", Role: profile.RoleVoltageA}}},
		{Index: 1, ID: "R2", Feeder: "F1", Upstream: "BRK", Interval: 2 * time.Second, NominalVoltage: 120, PTRatio: 1, Profile: p,
			Points: []profile.Point{{Name: "kw"}}},
	}}
	top, err := m.DeviceTopology()
	if err != nil {
		t.Fatal(err)
	}
	got := devicesFromModel(m, top)
	want := []detect.DeviceInfo{
		{Index: 0, ID: "BRK", Feeder: "F1", Upstream: -1, Nominal: 7200, PTRatio: 60, Interval: time.Second,
			PointRoles: []profile.Role{profile.RoleBreakerClosed, profile.RoleVoltageA}},
		{Index: 1, ID: "R2", Feeder: "F1", Upstream: 0, Nominal: 120, PTRatio: 1, Interval: 2 * time.Second,
			PointRoles: []profile.Role{profile.RoleNone}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("devicesFromModel =\n%+v\nwant\n%+v", got, want)
	}
}
