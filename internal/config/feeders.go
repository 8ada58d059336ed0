package config

import "slices"

// Feeder is what the configuration says about one feeder beyond its
// devices: the customers behind them and the ties from other feeders.
type Feeder struct {
	ID       string
	Sections []*Section
	Ties     []Tie
}

// Section is load served through one device.
type Section struct {
	ID string
	// FedBy is the device the section hangs below: it is out while that
	// device is de-energized or open.
	FedBy     *Device
	Customers int
	Critical  []CriticalCustomer
}

// CriticalCustomer is a customer who needs priority restoration.
type CriticalCustomer struct {
	Name string
	Kind CriticalKind
}

// CriticalKind says why a customer is critical.
type CriticalKind string

// The kinds of critical customers.
const (
	CriticalHospital    CriticalKind = "hospital"
	CriticalLifeSupport CriticalKind = "life_support"
	CriticalWater       CriticalKind = "water"
	CriticalEmergency   CriticalKind = "emergency"
	CriticalOther       CriticalKind = "other"
)

var criticalKinds = []CriticalKind{CriticalHospital, CriticalLifeSupport, CriticalWater, CriticalEmergency, CriticalOther}

// Tie is a normally open switch of another feeder that can feed a device
// of this one.
type Tie struct {
	// Device is the tie switch (on another feeder).
	Device *Device
	// To is the device of this feeder whose input the tie feeds.
	To *Device
}

// FeederByID returns the configured feeder with that ID, or nil.
func (m *Model) FeederByID(id string) *Feeder {
	for _, f := range m.Feeders {
		if f.ID == id {
			return f
		}
	}
	return nil
}

// feeders checks and builds the feeders block. It runs after devices, so
// sections and ties refer to the devices of the model.
func (l *loader) feeders(raws []rawFeeder, m *Model) {
	byID := map[string]*Device{}
	onFeeder := map[string]bool{}
	for _, d := range m.Devices {
		if d.ID != "" {
			if _, dup := byID[d.ID]; !dup {
				byID[d.ID] = d
			}
		}
		onFeeder[d.Feeder] = true
	}
	feederLine := map[string]int{}
	sectionLine := map[string]int{}
	criticalLine := map[string]int{}
	for i := range raws {
		r := &raws[i]
		path := indexPath("feeders", i)
		f := &Feeder{ID: r.ID}
		switch line, dup := feederLine[r.ID]; {
		case r.ID == "":
			l.s.add(path+".id", "required")
		case dup:
			l.s.add(path+".id", "duplicate feeder %q (first at line %d)", r.ID, line)
		case !onFeeder[r.ID]:
			l.s.add(path+".id", "no device is on feeder %q", r.ID)
		default:
			feederLine[r.ID] = l.s.line(path + ".id")
		}
		// device finds the device named at key, checking it is (or is not)
		// on this feeder.
		device := func(key, id string, same bool) *Device {
			d := byID[id]
			switch {
			case id == "":
				l.s.add(key, "required")
			case d == nil:
				l.s.add(key, "unknown device %q", id)
			case same && d.Feeder != r.ID:
				l.s.add(key, "device %q is on feeder %q, not %q", id, d.Feeder, r.ID)
			case !same && d.Feeder == r.ID:
				l.s.add(key, "device %q is on this feeder: a tie comes from another feeder", id)
			default:
				return d
			}
			return nil
		}
		for j := range r.Sections {
			rs := &r.Sections[j]
			sp := indexPath(path+".sections", j)
			sec := &Section{ID: rs.ID}
			switch line, dup := sectionLine[rs.ID]; {
			case rs.ID == "":
				l.s.add(sp+".id", "required")
			case !validID(rs.ID):
				l.s.add(sp+".id", "invalid section id %q (want [A-Za-z0-9_.-]+)", rs.ID)
			case dup:
				l.s.add(sp+".id", "duplicate section id %q (first at line %d)", rs.ID, line)
			default:
				sectionLine[rs.ID] = l.s.line(sp + ".id")
			}
			sec.FedBy = device(sp+".fed_by", rs.FedBy, true)
			switch {
			case rs.Customers == nil:
				l.s.add(sp+".customers", "required")
			case *rs.Customers < 0:
				l.s.add(sp+".customers", "%d is negative", *rs.Customers)
			default:
				sec.Customers = *rs.Customers
			}
			if rs.Customers != nil && len(rs.Critical) > max(*rs.Customers, 0) {
				l.s.add(sp+".critical", "%d critical customers but %d customers", len(rs.Critical), *rs.Customers)
			}
			for k, rc := range rs.Critical {
				cp := indexPath(sp+".critical", k)
				switch line, dup := criticalLine[rc.Name]; {
				case rc.Name == "":
					l.s.add(cp+".name", "required")
				case dup:
					l.s.add(cp+".name", "customer %q is already in a section (line %d): a customer is in one section only", rc.Name, line)
				default:
					criticalLine[rc.Name] = l.s.line(cp + ".name")
				}
				kind := CriticalKind(rc.Kind)
				if !slices.Contains(criticalKinds, kind) {
					l.s.add(cp+".kind", "unknown kind %q (want %s)", rc.Kind, joinKinds(criticalKinds))
				}
				sec.Critical = append(sec.Critical, CriticalCustomer{Name: rc.Name, Kind: kind})
			}
			f.Sections = append(f.Sections, sec)
		}
		for j, rt := range r.Ties {
			tp := indexPath(path+".ties", j)
			tie := Tie{Device: device(tp+".device", rt.Device, false), To: device(tp+".to", rt.To, true)}
			if tie.Device != nil && tie.To != nil {
				f.Ties = append(f.Ties, tie)
			}
		}
		m.Feeders = append(m.Feeders, f)
	}
}

func joinKinds(ks []CriticalKind) string {
	s := ""
	for i, k := range ks {
		if i > 0 {
			s += " | "
		}
		s += string(k)
	}
	return s
}

// Customers returns the customers of the feeder's sections.
func (f *Feeder) Customers() int {
	n := 0
	for _, s := range f.Sections {
		n += s.Customers
	}
	return n
}
