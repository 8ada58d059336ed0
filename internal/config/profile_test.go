package config

import (
	"path/filepath"
	"testing"

	"github.com/feederd/feederd/internal/profile"
)

// TestShippedProfiles loads every profile in configs/profiles and checks
// the addresses and types taken from the manuals.
func TestShippedProfiles(t *testing.T) {
	type spot struct {
		name  string
		table profile.RegType
		addr  uint16
		typ   profile.DataType
		scale float64
		role  profile.Role
	}
	tests := []struct {
		file    string
		name    string
		points  int
		float32 int
		spots   []spot
	}{
		{"pm5100.yaml", "pm5100", 17, 16, []spot{
			{"ia", profile.Holding, 2999, profile.Float32, 1, profile.RoleCurrentA},
			{"in", profile.Holding, 3005, profile.Float32, 1, profile.RoleCurrentN},
			{"vab", profile.Holding, 3019, profile.Float32, 1, profile.RoleNone},
			{"van", profile.Holding, 3027, profile.Float32, 1, profile.RoleVoltageA},
			{"vcn", profile.Holding, 3031, profile.Float32, 1, profile.RoleVoltageC},
			{"v_ln_avg", profile.Holding, 3035, profile.Float32, 1, profile.RoleNone},
			{"kw", profile.Holding, 3059, profile.Float32, 1, profile.RoleActivePower},
			{"pf", profile.Holding, 3083, profile.Float32, 1, profile.RolePowerFactor},
			{"freq", profile.Holding, 3109, profile.Float32, 1, profile.RoleFrequency},
			{"energy", profile.Holding, 3203, profile.Int64, 1, profile.RoleEnergy},
		}},
		{"sel751a.yaml", "sel751a", 8, 0, []spot{
			{"ia", profile.Holding, 650, profile.Int16, 1, profile.RoleCurrentA},
			{"van", profile.Holding, 674, profile.Int16, 1, profile.RoleVoltageA},
			{"vcn", profile.Holding, 678, profile.Int16, 1, profile.RoleVoltageC},
			{"kw", profile.Holding, 685, profile.Int16, 1, profile.RoleActivePower},
			{"pf", profile.Holding, 688, profile.Int16, 0.01, profile.RolePowerFactor},
			{"freq", profile.Holding, 689, profile.Int16, 0.01, profile.RoleFrequency},
			{"breaker_closed", profile.Holding, 1806, profile.Bit, 1, profile.RoleBreakerClosed},
		}},
		{"feeder-rtu.yaml", "feeder-rtu", 16, 12, []spot{
			{"va", profile.Input, 0, profile.Float32, 1, profile.RoleVoltageA},
			{"freq", profile.Input, 22, profile.Float32, 1, profile.RoleFrequency},
			{"breaker_closed", profile.DiscreteInput, 0, profile.Bool, 1, profile.RoleBreakerClosed},
			{"lockout", profile.DiscreteInput, 1, profile.Bool, 1, profile.RoleLockout},
			{"shot_count", profile.Holding, 0, profile.Uint16, 1, profile.RoleShotCount},
			{"trip_count", profile.Holding, 1, profile.Uint32, 1, profile.RoleTripCount},
		}},
	}
	listed := map[string]bool{}
	for _, tc := range tests {
		listed[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("..", "..", "configs", "profiles", tc.file)
			p, err := LoadProfile(path)
			if err != nil {
				t.Fatalf("LoadProfile: %v", err)
			}
			if p.Name != tc.name || p.Source != path || p.LineToLine {
				t.Errorf("name %q source %q line_to_line %v", p.Name, p.Source, p.LineToLine)
			}
			if len(p.Points) != tc.points {
				t.Errorf("%d points, want %d", len(p.Points), tc.points)
			}
			n := 0
			for _, pt := range p.Points {
				if pt.Type == profile.Float32 {
					n++
				}
				if pt.Order != profile.ABCD {
					t.Errorf("point %s: order %s, want ABCD", pt.Name, pt.Order)
				}
			}
			if n != tc.float32 {
				t.Errorf("%d float32 points, want %d", n, tc.float32)
			}
			for _, s := range tc.spots {
				pt := findPoint(p, s.name)
				if pt == nil {
					t.Errorf("no point %q", s.name)
					continue
				}
				if pt.RegType != s.table || pt.Address != s.addr || pt.Type != s.typ || pt.Scale != s.scale || pt.Role != s.role {
					t.Errorf("point %s: %s %d %s scale %g role %q, want %s %d %s scale %g role %q",
						s.name, pt.RegType, pt.Address, pt.Type, pt.Scale, pt.Role, s.table, s.addr, s.typ, s.scale, s.role)
				}
			}
		})
	}
	files, err := filepath.Glob("../../configs/profiles/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s is not checked by TestShippedProfiles", f)
		}
	}
}

func findPoint(p *profile.Profile, name string) *profile.Point {
	for i := range p.Points {
		if p.Points[i].Name == name {
			return &p.Points[i]
		}
	}
	return nil
}

// TestShippedProfilesInConfig uses every shipped profile from a config.
func TestShippedProfilesInConfig(t *testing.T) {
	m, err := Load("testdata/config/good/shipped.yaml", LoadOptions{ReadFile: readRepo})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"F101-CB": 8, "F101-RC1": 16, "F101-M1": 17}
	if len(m.Devices) != len(want) {
		t.Fatalf("%d devices", len(m.Devices))
	}
	for _, d := range m.Devices {
		if len(d.Points) != want[d.ID] {
			t.Errorf("%s: %d points, want %d", d.ID, len(d.Points), want[d.ID])
		}
		if want := "configs/profiles/" + d.Profile.Name + ".yaml"; d.Profile.Source != want {
			t.Errorf("%s: profile source %q", d.ID, d.Profile.Source)
		}
	}
}
