// Package simtest holds the test profiles that rtusim's packages share
// (devsrv, physics and the top package sim). It imports internal/profile
// only, so that the device server's own tests can use it.
package simtest

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/feederd/feederd/internal/profile"
)

// The profiles are built in Go so that the simulator's tests do not
// depend on internal/config. SEL751A and PM5100 follow the register maps
// in DOMAIN.md (as configs/profiles does); FeederRTU is not the shipped
// feeder-rtu.yaml but a map that exercises every table, word orders other
// than ABCD, scaled integers and a string. cmd/rtusim's tests load the
// shipped files.

// SEL751A is a feeder protection relay: int16 registers and a status word
// with bits.
func SEL751A() *profile.Profile {
	h := profile.Holding
	return &profile.Profile{
		Name: "sel751a", Vendor: "SEL", Model: "SEL-751A", Source: "test:sel751a",
		Points: []profile.Point{
			{Name: "ia", RegType: h, Address: 650, Type: profile.Int16, Unit: "A", Role: profile.RoleCurrentA},
			{Name: "ib", RegType: h, Address: 651, Type: profile.Int16, Unit: "A", Role: profile.RoleCurrentB},
			{Name: "ic", RegType: h, Address: 652, Type: profile.Int16, Unit: "A", Role: profile.RoleCurrentC},
			{Name: "van", RegType: h, Address: 674, Type: profile.Int16, Unit: "V", Role: profile.RoleVoltageA},
			{Name: "vbn", RegType: h, Address: 676, Type: profile.Int16, Unit: "V", Role: profile.RoleVoltageB},
			{Name: "vcn", RegType: h, Address: 678, Type: profile.Int16, Unit: "V", Role: profile.RoleVoltageC},
			{Name: "kw", RegType: h, Address: 685, Type: profile.Int16, Unit: "kW", Role: profile.RoleActivePower},
			{Name: "pf", RegType: h, Address: 688, Type: profile.Int16, Scale: 0.01, Role: profile.RolePowerFactor},
			{Name: "freq", RegType: h, Address: 689, Type: profile.Uint16, Scale: 0.01, Unit: "Hz", Role: profile.RoleFrequency},
			{Name: "breaker_closed", RegType: h, Address: 1806, Type: profile.Bit, BitPos: 0, Role: profile.RoleBreakerClosed},
			{Name: "trip_alarm", RegType: h, Address: 1806, Type: profile.Bit, BitPos: 3},
		},
	}
}

// PM5100 is a power meter: float32 readings and an int64 energy counter.
func PM5100() *profile.Profile {
	h := profile.Holding
	f := func(name string, addr uint16, unit string, role profile.Role) profile.Point {
		return profile.Point{Name: name, RegType: h, Address: addr, Type: profile.Float32, Order: profile.ABCD, Unit: unit, Role: role}
	}
	return &profile.Profile{
		Name: "pm5100", Vendor: "Schneider", Model: "PM5100", Source: "test:pm5100",
		Points: []profile.Point{
			f("ia", 2999, "A", profile.RoleCurrentA),
			f("ib", 3001, "A", profile.RoleCurrentB),
			f("ic", 3003, "A", profile.RoleCurrentC),
			f("in", 3005, "A", profile.RoleCurrentN),
			f("vab", 3019, "V", ""),
			f("vbc", 3021, "V", ""),
			f("vca", 3023, "V", ""),
			f("van", 3027, "V", profile.RoleVoltageA),
			f("vbn", 3029, "V", profile.RoleVoltageB),
			f("vcn", 3031, "V", profile.RoleVoltageC),
			f("vln_avg", 3035, "V", ""),
			f("kw", 3059, "kW", profile.RoleActivePower),
			f("kvar", 3067, "kvar", profile.RoleReactivePower),
			f("kva", 3075, "kVA", ""),
			f("pf", 3083, "", profile.RolePowerFactor),
			f("freq", 3109, "Hz", profile.RoleFrequency),
			{Name: "energy", RegType: h, Address: 3203, Type: profile.Int64, Unit: "Wh", Role: profile.RoleEnergy},
		},
	}
}

// FeederRTU is a recloser controller that uses every table.
func FeederRTU() *profile.Profile {
	in := profile.Input
	return &profile.Profile{
		Name: "feeder-rtu", Vendor: "Generic", Model: "Recloser RTU", Source: "test:feeder-rtu",
		Points: []profile.Point{
			{Name: "va", RegType: in, Address: 0, Type: profile.Int32, Order: profile.CDAB, Scale: 0.1, Unit: "V", Role: profile.RoleVoltageA},
			{Name: "vb", RegType: in, Address: 2, Type: profile.Int32, Order: profile.CDAB, Scale: 0.1, Unit: "V", Role: profile.RoleVoltageB},
			{Name: "vc", RegType: in, Address: 4, Type: profile.Int32, Order: profile.CDAB, Scale: 0.1, Unit: "V", Role: profile.RoleVoltageC},
			{Name: "ia", RegType: in, Address: 10, Type: profile.Uint16, Scale: 0.1, Unit: "A", Role: profile.RoleCurrentA},
			{Name: "ib", RegType: in, Address: 11, Type: profile.Uint16, Scale: 0.1, Unit: "A", Role: profile.RoleCurrentB},
			{Name: "ic", RegType: in, Address: 12, Type: profile.Uint16, Scale: 0.1, Unit: "A", Role: profile.RoleCurrentC},
			{Name: "kw", RegType: in, Address: 20, Type: profile.Float32, Order: profile.DCBA, Unit: "kW", Role: profile.RoleActivePower},
			{Name: "freq", RegType: in, Address: 30, Type: profile.Uint16, Scale: 0.01, Unit: "Hz", Role: profile.RoleFrequency},
			{Name: "closed", RegType: profile.Coil, Address: 0, Type: profile.Bool, Role: profile.RoleBreakerClosed},
			{Name: "remote_enabled", RegType: profile.Coil, Address: 2, Type: profile.Bool},
			{Name: "lockout", RegType: profile.DiscreteInput, Address: 0, Type: profile.Bool, Role: profile.RoleLockout},
			{Name: "shots", RegType: profile.Holding, Address: 100, Type: profile.Uint16, Role: profile.RoleShotCount},
			{Name: "trips", RegType: profile.Holding, Address: 101, Type: profile.Uint32, Role: profile.RoleTripCount},
			{Name: "setpoint", RegType: profile.Holding, Address: 110, Type: profile.Int16, Scale: 0.1},
			{Name: "model", RegType: profile.Holding, Address: 200, Type: profile.String, Length: 4},
		},
	}
}

// Profiles stands in for config.LoadProfile: it maps a file's base name
// (sel751a.yaml) to the profile above.
func Profiles(path string) (*profile.Profile, error) {
	switch strings.TrimSuffix(filepath.Base(path), ".yaml") {
	case "sel751a":
		return SEL751A(), nil
	case "pm5100":
		return PM5100(), nil
	case "feeder-rtu":
		return FeederRTU(), nil
	}
	return nil, fmt.Errorf("load profile %s: no such file", path)
}
