package sim

import (
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/profile"
)

// Device is one simulated Modbus unit: an identity and a register image that
// covers exactly the addresses of its profile's points.
//
// Address rules, as real devices behave: a read inside [lowest, highest]
// address of a table's points returns the stored registers, and 0 for the
// gaps between points (pollers coalesce neighbouring points into one request
// and real devices answer those); a read that reaches outside that span gets
// the exception illegal data address. A write must land entirely on points'
// registers (gaps are read-only); coils and holding registers only, as the
// protocol says.
//
// All methods are safe for concurrent use. Update applies several changes
// atomically, so a poll never sees half a tick.
type Device struct {
	// ID, Unit and Profile never change after NewDevice.
	ID      string
	Unit    uint8
	Profile *profile.Profile

	mu     sync.RWMutex
	tables [4]table // by profile.RegType
	points map[string]slot
}

// table is one Modbus data table of a device: the runs of addresses covered
// by points, sorted and merged. Bits are stored as 0 or 1.
type table struct {
	segs []segment
}

type segment struct {
	start uint16
	regs  []uint16
}

// slot locates a point's registers in the image.
type slot struct {
	point *profile.Point
	regs  []uint16 // aliases the segment's storage
}

// NewDevice builds the register image for p's points, all registers zero.
func NewDevice(id string, unit uint8, p *profile.Profile) (*Device, error) {
	if p == nil {
		return nil, fmt.Errorf("build device %s: no profile", id)
	}
	d := &Device{ID: id, Unit: unit, Profile: p, points: make(map[string]slot, len(p.Points))}
	type span struct{ lo, hi uint32 } // hi exclusive
	var spans [4][]span
	for i := range p.Points {
		pt := &p.Points[i]
		if int(pt.RegType) >= len(spans) {
			return nil, fmt.Errorf("build device %s: point %s: unknown register type %d", id, pt.Name, pt.RegType)
		}
		if pt.RegType.IsBit() && pt.Type != profile.Bool {
			return nil, fmt.Errorf("build device %s: point %s: a %s point must be bool, not %s", id, pt.Name, pt.RegType, pt.Type)
		}
		if !pt.RegType.IsBit() && pt.Type == profile.Bool {
			return nil, fmt.Errorf("build device %s: point %s: bool needs a coil or discrete input, not %s", id, pt.Name, pt.RegType)
		}
		w := pt.Words()
		if w < 1 {
			return nil, fmt.Errorf("build device %s: point %s: occupies no register", id, pt.Name)
		}
		hi := uint32(pt.Address) + uint32(w)
		if hi > 1<<16 {
			return nil, fmt.Errorf("build device %s: point %s: %s %d..%d runs past 65535", id, pt.Name, pt.RegType, pt.Address, hi-1)
		}
		if _, dup := d.points[pt.Name]; dup {
			return nil, fmt.Errorf("build device %s: point %s: defined twice", id, pt.Name)
		}
		d.points[pt.Name] = slot{point: pt}
		spans[pt.RegType] = append(spans[pt.RegType], span{uint32(pt.Address), hi})
	}
	for t := range spans {
		ss := spans[t]
		sort.Slice(ss, func(i, j int) bool { return ss[i].lo < ss[j].lo })
		var merged []span
		for _, s := range ss {
			if n := len(merged); n > 0 && s.lo <= merged[n-1].hi {
				merged[n-1].hi = max(merged[n-1].hi, s.hi)
				continue
			}
			merged = append(merged, s)
		}
		for _, s := range merged {
			d.tables[t].segs = append(d.tables[t].segs, segment{start: uint16(s.lo), regs: make([]uint16, s.hi-s.lo)})
		}
	}
	for name, s := range d.points {
		seg, off := d.tables[s.point.RegType].find(s.point.Address)
		s.regs = seg.regs[off : off+s.point.Words()]
		d.points[name] = s
	}
	return d, nil
}

// find returns the segment holding addr and addr's offset in it; addr must
// be covered.
func (t *table) find(addr uint16) (*segment, int) {
	i := sort.Search(len(t.segs), func(i int) bool {
		s := &t.segs[i]
		return int(s.start)+len(s.regs) > int(addr)
	})
	if i == len(t.segs) || t.segs[i].start > addr {
		return nil, 0
	}
	return &t.segs[i], int(addr - t.segs[i].start)
}

// read copies qty registers from addr into dst (len qty), zero in gaps; it
// fails when the range leaves the span of the table's points.
func (t *table) read(addr, qty uint16, dst []uint16) error {
	n := len(t.segs)
	if n == 0 || qty == 0 {
		return modbus.ErrIllegalDataAddress
	}
	first := uint32(t.segs[0].start)
	last := uint32(t.segs[n-1].start) + uint32(len(t.segs[n-1].regs)) - 1
	lo, hi := uint32(addr), uint32(addr)+uint32(qty)-1
	if lo < first || hi > last {
		return modbus.ErrIllegalDataAddress
	}
	clear(dst)
	for i := range t.segs {
		s := &t.segs[i]
		sLo, sHi := uint32(s.start), uint32(s.start)+uint32(len(s.regs))-1
		if sHi < lo || sLo > hi {
			continue
		}
		from, to := max(sLo, lo), min(sHi, hi)
		copy(dst[from-lo:to-lo+1], s.regs[from-sLo:to-sLo+1])
	}
	return nil
}

// write stores vals at addr; every address must belong to a point.
func (t *table) write(addr uint16, vals []uint16) error {
	if len(vals) == 0 {
		return modbus.ErrIllegalDataAddress
	}
	s, off := t.find(addr)
	if s == nil || off+len(vals) > len(s.regs) {
		return modbus.ErrIllegalDataAddress
	}
	copy(s.regs[off:], vals)
	return nil
}

// ReadRegisters returns qty registers of table rt from addr (bits as 0/1).
// Errors are modbus.Error values, unwrapped, so servers can map them to
// exception codes.
func (d *Device) ReadRegisters(rt profile.RegType, addr, qty uint16) ([]uint16, error) {
	if int(rt) >= len(d.tables) {
		return nil, modbus.ErrIllegalFunction
	}
	out := make([]uint16, qty)
	d.mu.RLock()
	err := d.tables[rt].read(addr, qty, out)
	d.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	return out, nil
}

// WriteRegisters stores vals at addr in a writable table (coils as 0/1,
// holding registers).
func (d *Device) WriteRegisters(rt profile.RegType, addr uint16, vals []uint16) error {
	if rt != profile.Coil && rt != profile.Holding {
		return modbus.ErrIllegalFunction
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tables[rt].write(addr, vals)
}

// Tx changes a device's points inside Device.Update; it is valid only during
// the call.
type Tx struct{ d *Device }

// SetValue stores v, the engineering value, through the point's encoding
// (scale, offset, type, word order). Values outside an integer type's
// range are clamped, as Point.Encode does.
func (tx Tx) SetValue(point string, v float64) error {
	s, err := tx.d.slot(point)
	if err != nil {
		return err
	}
	if s.point.Type == profile.String {
		return fmt.Errorf("set %s on %s: a string point takes SetString", point, tx.d.ID)
	}
	s.point.Encode(v, s.regs)
	return nil
}

// SetString stores s in a string point, NUL padded and cut to its length.
func (tx Tx) SetString(point, text string) error {
	s, err := tx.d.slot(point)
	if err != nil {
		return err
	}
	if s.point.Type != profile.String {
		return fmt.Errorf("set %s on %s: SetString needs a string point, not %s", point, tx.d.ID, s.point.Type)
	}
	s.point.EncodeString(text, s.regs)
	return nil
}

// Value returns the point's current engineering value.
func (tx Tx) Value(point string) (float64, error) {
	s, err := tx.d.slot(point)
	if err != nil {
		return 0, err
	}
	if s.point.Type == profile.String {
		return 0, fmt.Errorf("read %s on %s: a string point has no number", point, tx.d.ID)
	}
	return s.point.Decode(s.regs), nil
}

// Update runs fn with the device locked for writing, so every change it
// makes becomes visible to Modbus clients at once.
func (d *Device) Update(fn func(tx Tx) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return fn(Tx{d})
}

// SetValue stores one point's engineering value.
func (d *Device) SetValue(point string, v float64) error {
	return d.Update(func(tx Tx) error { return tx.SetValue(point, v) })
}

// SetString stores one string point's text.
func (d *Device) SetString(point, text string) error {
	return d.Update(func(tx Tx) error { return tx.SetString(point, text) })
}

// Value decodes one point's current engineering value.
func (d *Device) Value(point string) (float64, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return Tx{d}.Value(point)
}

// Text decodes one string point.
func (d *Device) Text(point string) (string, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	s, err := d.slot(point)
	if err != nil {
		return "", err
	}
	if s.point.Type != profile.String {
		return "", fmt.Errorf("read %s on %s: not a string point", point, d.ID)
	}
	return s.point.DecodeString(s.regs), nil
}

// Values returns every point's current value by name: float64 for numbers,
// string for string points, nil for values that are not finite numbers (a
// meter's NaN), so the map always encodes as JSON.
func (d *Device) Values() map[string]any {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make(map[string]any, len(d.points))
	for name, s := range d.points {
		if s.point.Type == profile.String {
			out[name] = s.point.DecodeString(s.regs)
			continue
		}
		v := s.point.Decode(s.regs)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			out[name] = nil
			continue
		}
		out[name] = v
	}
	return out
}

func (d *Device) slot(point string) (slot, error) {
	s, ok := d.points[point]
	if !ok {
		return slot{}, fmt.Errorf("device %s (profile %s) has no point %q", d.ID, d.Profile.Name, point)
	}
	return s, nil
}
