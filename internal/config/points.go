package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/feederd/feederd/internal/profile"
)

// LoadProfile reads and validates one profile file.
func LoadProfile(path string) (*profile.Profile, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load profile: %w", err)
	}
	return ParseProfile(data, path)
}

// ParseProfile validates a profile file's contents. source names the file in
// errors (as *Errors) and becomes Profile.Source.
func ParseProfile(data []byte, source string) (*profile.Profile, error) {
	p, s := parseProfile(data, source, defaults())
	if s.Len() > 0 {
		errs := Errors(s.sorted())
		return nil, &errs
	}
	return p, nil
}

// parseProfile returns the profile even when it has errors (then nil only
// if the file did not parse), so that Load can tell a broken profile from
// an unknown one.
func parseProfile(data []byte, source string, d defaultValues) (*profile.Profile, *sink) {
	s := newSink(source)
	var rp rawProfile
	if !decodeFile(data, &rp, s) {
		return nil, s
	}
	p := &profile.Profile{
		Name:       rp.Name,
		Vendor:     rp.Vendor,
		Model:      rp.Model,
		LineToLine: rp.LineToLine,
		Source:     source,
	}
	switch {
	case rp.Name == "":
		s.add("name", "required")
	case !validID(rp.Name):
		s.add("name", "invalid profile name %q (want [A-Za-z0-9_.-]+)", rp.Name)
	}
	if len(rp.Points) == 0 {
		s.add("points", "a profile needs at least one point")
	}
	if len(rp.Points) > maxPoints {
		s.add("points", "%d points, at most %d allowed", len(rp.Points), maxPoints)
	}
	p.Points = make([]profile.Point, len(rp.Points))
	refs := make([]pointRef, 0, len(rp.Points))
	for i := range rp.Points {
		path := indexPath("points", i)
		pt, addrKey, ok := buildPoint(&rp.Points[i], path, s, d)
		p.Points[i] = pt
		if ok {
			refs = append(refs, pointRef{pt: &p.Points[i], path: path, addrKey: addrKey, decl: i})
		}
	}
	checkPoints(refs, s, p.Name)
	return p, s
}

// maxPoints keeps point indexes below sample.NoPoint.
const maxPoints = 65535

// buildPoint validates one point and applies its defaults. It returns the
// key that gave its address ("address" or "register") and whether the point
// is valid.
func buildPoint(rp *rawPoint, path string, s *sink, d defaultValues) (profile.Point, string, bool) {
	ok := true
	bad := func(key, format string, args ...any) {
		s.add(joinPath(path, key), format, args...)
		ok = false
	}
	pt := profile.Point{Name: rp.Name, Offset: rp.Offset, Unit: rp.Unit, Order: d.Order, Scale: d.Scale}
	switch {
	case rp.Name == "":
		bad("name", "required")
	case !validPointName(rp.Name):
		bad("name", "invalid point name %q (want [a-z0-9_]+)", rp.Name)
	}

	tableOK, typeOK := false, false
	switch t, known := profile.ParseRegType(rp.Table); {
	case rp.Table == "":
		bad("table", "required (coil, discrete_input, holding or input)")
	case !known:
		bad("table", "unknown table %q (want coil, discrete_input, holding or input)", rp.Table)
	default:
		pt.RegType, tableOK = t, true
	}
	switch t, known := profile.ParseDataType(rp.Type); {
	case rp.Type == "":
		bad("type", "required")
	case !known:
		bad("type", "unknown type %q", rp.Type)
	default:
		pt.Type, typeOK = t, true
	}
	if tableOK && typeOK && pt.RegType.IsBit() != (pt.Type == profile.Bool) {
		if pt.Type == profile.Bool {
			bad("type", "type bool needs a coil or discrete_input table, not %s", pt.RegType)
		} else {
			bad("type", "type %s needs a holding or input table, not %s", pt.Type, pt.RegType)
		}
		typeOK = false
	}

	switch {
	case typeOK && pt.Type == profile.Bit && rp.Bit == nil:
		bad("bit", "required for type bit (0..15)")
	case rp.Bit == nil:
	case typeOK && pt.Type != profile.Bit:
		bad("bit", "only for type bit")
	case *rp.Bit < 0 || *rp.Bit > 15:
		bad("bit", "bit %d out of range 0..15", *rp.Bit)
	default:
		pt.BitPos = uint8(*rp.Bit)
	}

	lengthOK := true
	switch {
	case typeOK && pt.Type == profile.String && rp.Length == nil:
		bad("length", "required for type string (registers)")
		lengthOK = false
	case rp.Length == nil:
	case typeOK && pt.Type != profile.String:
		bad("length", "only for type string")
	case *rp.Length < 1 || *rp.Length > 125:
		bad("length", "length %d out of range 1..125", *rp.Length)
		lengthOK = false
	default:
		pt.Length = uint16(*rp.Length)
	}

	if rp.Order != "" {
		if o, known := profile.ParseWordOrder(rp.Order); known {
			pt.Order = o
		} else {
			bad("order", "unknown order %q (want ABCD, CDAB, BADC or DCBA)", rp.Order)
		}
	}
	if rp.Scale != nil {
		if *rp.Scale == 0 {
			bad("scale", "must not be 0")
		}
		pt.Scale = *rp.Scale
	}
	if rp.Role != "" {
		pt.Role = profile.Role(rp.Role)
		switch {
		case !slices.Contains(profile.Roles, pt.Role):
			bad("role", "unknown role %q", rp.Role)
		case typeOK && pt.Type == profile.String:
			bad("role", "a string point cannot have a role")
		}
	}

	addrKey, addrOK := "address", false
	switch {
	case rp.Address != nil && rp.Register != nil:
		bad("register", "set address (0-based) or register (1-based), not both")
	case rp.Address == nil && rp.Register == nil:
		bad("address", "required (or register, the 1-based number)")
	case rp.Address != nil:
		if a := *rp.Address; a < 0 || a > 65535 {
			bad("address", "address %d out of range 0..65535", a)
		} else {
			pt.Address, addrOK = uint16(a), true
		}
	default:
		addrKey = "register"
		if r := *rp.Register; r < 1 || r > 65536 {
			bad("register", "register %d out of range 1..65536", r)
		} else {
			pt.Address, addrOK = uint16(r-1), true
		}
	}
	if addrOK && typeOK && lengthOK {
		if end := int(pt.Address) + pt.Words() - 1; end > 65535 {
			bad(addrKey, "%s at address %d would end at address %d, beyond 65535", pt.Type, pt.Address, end)
		}
	}
	return pt, addrKey, ok
}

// pointRef is a valid point being checked against the others of its device
// or profile.
type pointRef struct {
	pt *profile.Point
	// path is the point's key path, "" for a profile's point when a
	// device's own points are checked (profile points were checked with
	// their profile and are never reported again).
	path    string
	addrKey string
	decl    int // declaration order: the later of two conflicting points is reported
}

// checkPoints reports duplicate names, duplicate roles, clashing InfluxDB
// field keys and overlapping registers. profileName names the profile that
// path-less refs come from.
func checkPoints(refs []pointRef, s *sink, profileName string) {
	where := func(r pointRef) string {
		if r.path == "" {
			return fmt.Sprintf("profile %q", profileName)
		}
		return "line " + strconv.Itoa(s.line(r.path))
	}
	names := map[string]pointRef{}
	roles := map[profile.Role]pointRef{}
	for _, r := range refs {
		if first, dup := names[r.pt.Name]; dup {
			if r.path != "" {
				s.add(joinPath(r.path, "name"), "duplicate point name %q (%s)", r.pt.Name, where(first))
			}
		} else {
			names[r.pt.Name] = r
		}
		if r.pt.Role == profile.RoleNone {
			continue
		}
		if first, dup := roles[r.pt.Role]; dup {
			if r.path != "" {
				s.add(joinPath(r.path, "role"), "duplicate role %s: already point %q (%s)", r.pt.Role, first.pt.Name, where(first))
			}
		} else {
			roles[r.pt.Role] = r
		}
	}
	checkFields(refs, s, where)

	// Sweep each table in address order, keeping the points whose
	// registers reach the current address.
	sorted := slices.Clone(refs)
	slices.SortFunc(sorted, func(a, b pointRef) int {
		return cmp.Or(cmp.Compare(a.pt.RegType, b.pt.RegType), cmp.Compare(a.pt.Address, b.pt.Address), cmp.Compare(a.decl, b.decl))
	})
	var active []pointRef
	for _, r := range sorted {
		active = slices.DeleteFunc(active, func(a pointRef) bool {
			return a.pt.RegType != r.pt.RegType || lastAddr(a.pt) < int(r.pt.Address)
		})
		for _, a := range active {
			first, later := a, r
			if later.decl < first.decl {
				first, later = later, first
			}
			if later.path == "" {
				continue
			}
			f, l := first.pt, later.pt
			switch {
			case f.Type == profile.Bit && l.Type == profile.Bit:
				if f.BitPos == l.BitPos {
					s.add(joinPath(later.path, "bit"), "bit %d of %s is already point %q (%s)", l.BitPos, regRange(l), f.Name, where(first))
				}
			case f.Type == profile.Bit && isInteger(l.Type), l.Type == profile.Bit && isInteger(f.Type):
				// A status word and its bits: both are wanted.
			default:
				s.add(joinPath(later.path, later.addrKey), "%s as %s overlaps point %q (%s as %s, %s)",
					regRange(l), shape(l), f.Name, regRange(f), shape(f), where(first))
			}
		}
		active = append(active, r)
	}
}

// checkFields reports points whose keys in the InfluxDB line of a device
// poll (profile.Point.Field and QualityField) clash with another point's or
// with the poll's own fields. Names and roles are each unique (checked
// before), so a clash involves a point without a role, named like another
// point's role, like another point's quality key, or like a poll field.
// Text points are not written and have no keys.
func checkFields(refs []pointRef, s *sink, where func(pointRef) string) {
	type owner struct {
		r       pointRef
		quality bool
	}
	keys := map[string]owner{}
	for _, r := range refs {
		p := r.pt
		if p.Type == profile.String {
			continue
		}
		key := "name"
		if p.Role != profile.RoleNone {
			key = "role"
		}
		f, q := p.Field(), p.QualityField()
		switch first, dup := keys[f]; {
		case f == profile.OKField || f == profile.SeqField:
			if r.path != "" {
				s.add(joinPath(r.path, key), "point %q would write InfluxDB field %q, which every poll line has", p.Name, f)
			}
		case dup && first.quality:
			if r.path != "" {
				s.add(joinPath(r.path, key), "point %q would write InfluxDB field %q, the quality field of point %q (%s)", p.Name, f, first.r.pt.Name, where(first.r))
			}
		case dup && first.r.pt.Name != p.Name && first.r.pt.Role != p.Role:
			if r.path != "" {
				s.add(joinPath(r.path, key), "point %q would write InfluxDB field %q, as point %q does (%s)", p.Name, f, first.r.pt.Name, where(first.r))
			}
		}
		if first, dup := keys[q]; dup && !first.quality && r.path != "" {
			s.add(joinPath(r.path, key), "point %q would write InfluxDB field %q when not good, the field of point %q (%s)", p.Name, q, first.r.pt.Name, where(first.r))
		}
		if _, dup := keys[f]; !dup {
			keys[f] = owner{r: r}
		}
		if _, dup := keys[q]; !dup {
			keys[q] = owner{r: r, quality: true}
		}
	}
}

func lastAddr(p *profile.Point) int { return int(p.Address) + p.Words() - 1 }

func regRange(p *profile.Point) string {
	if p.Words() == 1 {
		return fmt.Sprintf("%s %d", p.RegType, p.Address)
	}
	return fmt.Sprintf("%s %d..%d", p.RegType, p.Address, lastAddr(p))
}

// shape names the type, with the word order where it matters.
func shape(p *profile.Point) string {
	switch {
	case p.Type == profile.String:
		return fmt.Sprintf("string[%d] %s", p.Length, p.Order)
	case p.Type == profile.Bit:
		return fmt.Sprintf("bit %d", p.BitPos)
	case p.Words() > 1:
		return fmt.Sprintf("%s %s", p.Type, p.Order)
	}
	return p.Type.String()
}

func isInteger(t profile.DataType) bool {
	switch t {
	case profile.Int16, profile.Uint16, profile.Int32, profile.Uint32, profile.Int64, profile.Uint64:
		return true
	}
	return false
}

func hasVoltageRole(points []profile.Point) bool {
	for i := range points {
		switch points[i].Role {
		case profile.RoleVoltageA, profile.RoleVoltageB, profile.RoleVoltageC:
			return true
		}
	}
	return false
}

// validID accepts [A-Za-z0-9_.-]+.
func validID(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// validPointName accepts [a-z0-9_]+.
func validPointName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// validLabelKey accepts [a-z_]+.
func validLabelKey(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c == '_') {
			return false
		}
	}
	return true
}
