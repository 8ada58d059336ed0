package physics

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sim/devsrv"
)

// SteadyConfig describes a healthy, energised device.
type SteadyConfig struct {
	// Nominal is 1 pu in the device's own terms (as its voltage points
	// report after scaling), e.g. 7200 V primary or 120 V secondary.
	Nominal float64
	// Current per phase in amperes (default 200).
	Current float64
	// PowerFactor (default 0.95) and Frequency in Hz (default 60).
	PowerFactor float64
	Frequency   float64
	// Seed makes the noise reproducible; with the device ID it picks the
	// random sequence, so devices of one seed differ from each other.
	Seed uint64
	// Fixed points keep these values and get no noise.
	Fixed map[string]float64
}

// Steady drives a device as a healthy feeder point: voltages near nominal,
// currents near their setting, power factor, frequency, breaker closed, no
// lockout, no shots, energy counting up with the power. Each Tick draws new
// noise from a generator seeded by Seed and the device ID, so a run with
// the same seed and tick times serves the same values.
//
// Points are filled by role; points without a role by their unit (V, A, Hz,
// W, var, VA, Wh with k or M prefixes), so a meter's extra readings look
// plausible too. A voltage point with no role whose name ends in ab, bc or
// ca on a line-to-neutral profile gets the line-to-line value.
type Steady struct {
	dev  *devsrv.Device
	cfg  SteadyConfig
	rng  *rand.Rand
	last time.Time
	// energy is the counter in Wh; it grows by each tick's power.
	energy float64
	// voltScale converts the nominal to volts (1000 when the profile's
	// voltage points are in kV).
	voltScale float64
	ticked    bool
}

// NewSteady checks cfg against the device's points and returns the driver;
// nothing is written until the first Tick.
func NewSteady(dev *devsrv.Device, cfg SteadyConfig) (*Steady, error) {
	if cfg.Current == 0 {
		cfg.Current = 200
	}
	if cfg.PowerFactor == 0 {
		cfg.PowerFactor = 0.95
	}
	if cfg.Frequency == 0 {
		cfg.Frequency = 60
	}
	if cfg.Nominal < 0 || cfg.Current < 0 || cfg.PowerFactor < 0 || cfg.PowerFactor > 1 || cfg.Frequency < 0 {
		return nil, fmt.Errorf("drive %s: nominal %g, current %g, power factor %g, frequency %g: negative or power factor above 1",
			dev.ID, cfg.Nominal, cfg.Current, cfg.PowerFactor, cfg.Frequency)
	}
	for name := range cfg.Fixed {
		if err := dev.CheckPoint(name); err != nil {
			return nil, fmt.Errorf("drive %s: fixed value: %w", dev.ID, err)
		}
	}
	h := fnv.New64a()
	h.Write([]byte(dev.ID))
	s := &Steady{
		dev:       dev,
		cfg:       cfg,
		rng:       rand.New(rand.NewPCG(cfg.Seed, h.Sum64())),
		voltScale: voltScale(dev.Profile),
	}
	// A counter somewhere between 1 and 2 GWh, as on a meter in service.
	s.energy = 1e9 + s.rng.Float64()*1e9
	return s, nil
}

// Tick writes the next set of values, all at once. Energy grows by this
// tick's power over the time since the previous tick (never backwards).
func (s *Steady) Tick(now time.Time) error {
	if !s.ticked {
		s.last, s.ticked = now, true
	}
	hours := max(now.Sub(s.last).Hours(), 0)
	s.last = now
	c := s.cfg
	pf := clamp(c.PowerFactor+0.005*s.rng.NormFloat64(), 0, 1)
	freq := c.Frequency + 0.005*s.rng.NormFloat64()
	var vPhase [3]float64
	var iPhase [3]float64
	for k := range vPhase {
		vPhase[k] = c.Nominal * (1 + 0.003*s.rng.NormFloat64())
		iPhase[k] = c.Current * (1 + 0.02*s.rng.NormFloat64())
	}
	// Power from volts line-to-neutral: the nominal is line-to-line on
	// some profiles.
	vLN := c.Nominal * s.voltScale
	if s.dev.Profile.LineToLine {
		vLN /= math.Sqrt(3)
	}
	apparent := 3 * vLN * c.Current // VA
	active := apparent * pf
	reactive := apparent * math.Sqrt(1-pf*pf)
	s.energy += active * hours
	energy := s.energy

	r := reading{v: vPhase, i: iPhase, pf: pf, freq: freq, active: active, reactive: reactive, apparent: apparent, energy: energy, closed: true}
	for i := range s.dev.Profile.Points {
		if s.dev.Profile.Points[i].Role == profile.RoleCurrentN {
			r.in = 0.05 * c.Current * (1 + 0.1*s.rng.NormFloat64())
			break
		}
	}
	return s.dev.Update(func(tx devsrv.Tx) error {
		for i := range s.dev.Profile.Points {
			p := &s.dev.Profile.Points[i]
			if v, ok := c.Fixed[p.Name]; ok {
				if err := tx.SetValue(p.Name, v); err != nil {
					return err
				}
				continue
			}
			v, ok := r.value(p, s.dev.Profile.LineToLine, s.voltScale)
			if !ok {
				continue
			}
			if err := tx.SetValue(p.Name, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// reading is what a device measures at one instant, in its own terms.
type reading struct {
	// v are the phase voltages as the device reports them (its nominal
	// times the per-unit value), i the phase currents and in the neutral
	// current in amperes.
	v  [3]float64
	i  [3]float64
	in float64
	pf float64
	// noCurrent: no current flows (an open switch, a dead line), so the
	// power factor is undefined: a float point reports NaN, as meters do
	// for "not available", an integer point 0.
	noCurrent bool
	// freq in Hz; active, reactive and apparent power in W, var and VA;
	// energy in Wh.
	freq, active, reactive, apparent, energy float64
	closed, lockout                          bool
	shots, trips                             float64
}

// value is the reading for point p, by role or, for points without a role,
// by unit (V, A, Hz, W, var, VA, Wh with k or M prefixes). A voltage point
// with no role whose name ends in ab, bc or ca on a line-to-neutral profile
// gets that pair's line-to-line voltage (lineToLine), any other the mean
// of the phases. voltScale converts the device's voltage terms to volts
// (1000 when its voltage points are in kV).
func (r *reading) value(p *profile.Point, lineToLine bool, voltScale float64) (float64, bool) {
	switch p.Role {
	case profile.RoleVoltageA:
		return r.v[0], true
	case profile.RoleVoltageB:
		return r.v[1], true
	case profile.RoleVoltageC:
		return r.v[2], true
	case profile.RoleCurrentA:
		return r.i[0], true
	case profile.RoleCurrentB:
		return r.i[1], true
	case profile.RoleCurrentC:
		return r.i[2], true
	case profile.RoleCurrentN:
		return r.in, true
	case profile.RoleActivePower:
		return r.active / prefixFactor(p.Unit, "W"), true
	case profile.RoleReactivePower:
		return r.reactive / prefixFactor(p.Unit, "var"), true
	case profile.RolePowerFactor:
		if r.noCurrent {
			if p.Type == profile.Float32 || p.Type == profile.Float64 {
				return math.NaN(), true
			}
			return 0, true
		}
		return r.pf, true
	case profile.RoleFrequency:
		return r.freq, true
	case profile.RoleEnergy:
		return r.energy / prefixFactor(p.Unit, "Wh"), true
	case profile.RoleBreakerClosed:
		return b2f(r.closed), true
	case profile.RoleLockout:
		return b2f(r.lockout), true
	case profile.RoleShotCount:
		return r.shots, true
	case profile.RoleTripCount:
		return r.trips, true
	}
	if p.Type == profile.String || p.Type == profile.Bool || p.Type == profile.Bit {
		return 0, false
	}
	// No role: judge by unit.
	u := strings.ToLower(p.Unit)
	switch {
	case strings.HasSuffix(u, "wh"):
		return r.energy / prefixFactor(p.Unit, "Wh"), true
	case strings.HasSuffix(u, "va"):
		return r.apparent / prefixFactor(p.Unit, "VA"), true
	case strings.HasSuffix(u, "var"):
		return r.reactive / prefixFactor(p.Unit, "var"), true
	case strings.HasSuffix(u, "w"):
		return r.active / prefixFactor(p.Unit, "W"), true
	case strings.HasSuffix(u, "hz"):
		return r.freq, true
	case u == "a" || u == "ka":
		return r.i[0] / prefixFactor(p.Unit, "A"), true
	case u == "v" || u == "kv":
		volts := (r.v[0] + r.v[1] + r.v[2]) / 3
		n := strings.ToLower(p.Name)
		if !lineToLine {
			for k, pair := range [3]string{"ab", "bc", "ca"} {
				if strings.HasSuffix(n, pair) {
					volts = phaseToPhase(r.v[k], r.v[(k+1)%3])
				}
			}
		}
		return volts * voltScale / prefixFactor(p.Unit, "V"), true
	}
	return 0, false
}

// phaseToPhase is the magnitude of the difference of two phase-to-neutral
// phasors of magnitudes a and b, 120° apart: sqrt(a² + b² + ab), √3·a when
// a = b.
func phaseToPhase(a, b float64) float64 { return math.Sqrt(a*a + b*b + a*b) }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// voltScale converts a profile's voltage terms to volts: 1000 when its
// voltage points are in kV.
func voltScale(p *profile.Profile) float64 {
	for i := range p.Points {
		if isVoltageRole(p.Points[i].Role) {
			return prefixFactor(p.Points[i].Unit, "V")
		}
	}
	return 1
}

// HasVoltage says whether p has phase voltage points, which the physics
// fills from a nominal voltage (so a device of p needs one).
func HasVoltage(p *profile.Profile) bool {
	return slices.ContainsFunc(p.Points, func(pt profile.Point) bool { return isVoltageRole(pt.Role) })
}

func isVoltageRole(r profile.Role) bool {
	return r == profile.RoleVoltageA || r == profile.RoleVoltageB || r == profile.RoleVoltageC
}

// prefixFactor returns the SI prefix multiplier of unit over base: "kW" over
// "W" is 1000, "MWh" over "Wh" 1e6; an unknown or missing prefix is 1.
func prefixFactor(unit, base string) float64 {
	if len(unit) <= len(base) || !strings.EqualFold(unit[len(unit)-len(base):], base) {
		return 1
	}
	switch unit[:len(unit)-len(base)] {
	case "k", "K":
		return 1e3
	case "M":
		return 1e6
	case "G":
		return 1e9
	}
	return 1
}

func clamp(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }
