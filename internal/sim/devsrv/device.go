package devsrv

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/simonvetter/modbus"

	"github.com/feederd/feederd/internal/profile"
)

// Layout is where a profile's points live in a register image: the runs of
// addresses each Modbus table covers, and each point's place. It never
// changes, so every device of a profile can share one; a device then holds
// only its registers, which keeps 10,000 simulated devices small.
type Layout struct {
	Profile *profile.Profile
	tables  [4][]segment // by profile.RegType, sorted by start
	points  map[string]pointSlot
	size    int // registers in an image
}

// segment is one run of addresses covered by points; bits are stored one per
// register as 0 or 1.
type segment struct {
	start uint16
	n     uint16 // registers in the run (a run of 65536 cannot occur: see newLayout)
	off   uint32 // index of start in the image
}

// pointSlot locates a point's registers in the image.
type pointSlot struct {
	point *profile.Point
	off   uint32
	n     uint32
}

// NewLayout checks p's points and computes its image layout.
func NewLayout(p *profile.Profile) (*Layout, error) {
	if p == nil {
		return nil, fmt.Errorf("lay out profile: no profile")
	}
	return newLayout(p, "lay out profile "+p.Name)
}

func newLayout(p *profile.Profile, action string) (*Layout, error) {
	l := &Layout{Profile: p, points: make(map[string]pointSlot, len(p.Points))}
	type span struct{ lo, hi uint32 } // hi exclusive
	var spans [4][]span
	for i := range p.Points {
		pt := &p.Points[i]
		if int(pt.RegType) >= len(spans) {
			return nil, fmt.Errorf("%s: point %s: unknown register type %d", action, pt.Name, pt.RegType)
		}
		if pt.RegType.IsBit() && pt.Type != profile.Bool {
			return nil, fmt.Errorf("%s: point %s: a %s point must be bool, not %s", action, pt.Name, pt.RegType, pt.Type)
		}
		if !pt.RegType.IsBit() && pt.Type == profile.Bool {
			return nil, fmt.Errorf("%s: point %s: bool needs a coil or discrete input, not %s", action, pt.Name, pt.RegType)
		}
		w := pt.Words()
		if w < 1 {
			return nil, fmt.Errorf("%s: point %s: occupies no register", action, pt.Name)
		}
		hi := uint32(pt.Address) + uint32(w)
		if hi > 1<<16 {
			return nil, fmt.Errorf("%s: point %s: %s %d..%d runs past 65535", action, pt.Name, pt.RegType, pt.Address, hi-1)
		}
		if _, dup := l.points[pt.Name]; dup {
			return nil, fmt.Errorf("%s: point %s: defined twice", action, pt.Name)
		}
		l.points[pt.Name] = pointSlot{point: pt}
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
			n := s.hi - s.lo
			if n > math.MaxUint16 {
				// One run of all 65536 addresses: no profile has one, and
				// a read may cover 125 registers at most anyway.
				return nil, fmt.Errorf("%s: %s table covers all 65536 addresses", action, profile.RegType(t))
			}
			l.tables[t] = append(l.tables[t], segment{start: uint16(s.lo), n: uint16(n), off: uint32(l.size)})
			l.size += int(n)
		}
	}
	for name, s := range l.points {
		seg, off := l.find(s.point.RegType, s.point.Address)
		s.off = seg.off + uint32(off)
		s.n = uint32(s.point.Words())
		l.points[name] = s
	}
	return l, nil
}

// find returns the segment of table rt holding addr and addr's offset in
// it, or nil when no point covers addr.
func (l *Layout) find(rt profile.RegType, addr uint16) (*segment, int) {
	segs := l.tables[rt]
	i := sort.Search(len(segs), func(i int) bool {
		return int(segs[i].start)+int(segs[i].n) > int(addr)
	})
	if i == len(segs) || segs[i].start > addr {
		return nil, 0
	}
	return &segs[i], int(addr - segs[i].start)
}

// inSpan reports whether addr..addr+qty-1 lies within the lowest and
// highest address of table rt's points.
func (l *Layout) inSpan(rt profile.RegType, addr, qty uint16) bool {
	segs := l.tables[rt]
	n := len(segs)
	if n == 0 || qty == 0 {
		return false
	}
	first := uint32(segs[0].start)
	last := uint32(segs[n-1].start) + uint32(segs[n-1].n) - 1
	return uint32(addr) >= first && uint32(addr)+uint32(qty)-1 <= last
}

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
	// ID, Unit, Profile and Layout never change after NewDevice.
	ID      string
	Unit    uint8
	Profile *profile.Profile
	Layout  *Layout

	mu   sync.RWMutex
	regs []uint16 // the image, laid out by Layout

	fault   atomic.Pointer[faultState] // nil: no fault
	watchMu sync.Mutex                 // serialises SetFault and guards watchers
	watch   []*faultWatcher
}

// slot is a point and its registers in a device's image.
type slot struct {
	point *profile.Point
	regs  []uint16 // aliases the image
}

// NewDevice builds the register image for p's points, all registers zero.
// Devices of one profile are smaller when made by a shared Layout's
// NewDevice.
func NewDevice(id string, unit uint8, p *profile.Profile) (*Device, error) {
	if p == nil {
		return nil, fmt.Errorf("build device %s: no profile", id)
	}
	l, err := newLayout(p, "build device "+id)
	if err != nil {
		return nil, err
	}
	return l.NewDevice(id, unit), nil
}

// NewDevice builds a device with this layout, all registers zero.
func (l *Layout) NewDevice(id string, unit uint8) *Device {
	return &Device{ID: id, Unit: unit, Profile: l.Profile, Layout: l, regs: make([]uint16, l.size)}
}

// read copies qty registers of table rt from addr into dst (len qty), zero
// in gaps; it fails when the range leaves the span of the table's points.
// The caller holds d.mu.
func (d *Device) read(rt profile.RegType, addr, qty uint16, dst []uint16) error {
	if !d.Layout.inSpan(rt, addr, qty) {
		return modbus.ErrIllegalDataAddress
	}
	clear(dst)
	lo, hi := uint32(addr), uint32(addr)+uint32(qty)-1
	for _, s := range d.Layout.tables[rt] {
		sLo, sHi := uint32(s.start), uint32(s.start)+uint32(s.n)-1
		if sHi < lo || sLo > hi {
			continue
		}
		from, to := max(sLo, lo), min(sHi, hi)
		copy(dst[from-lo:to-lo+1], d.regs[s.off+from-sLo:s.off+to-sLo+1])
	}
	return nil
}

// appendRegs appends qty registers of table rt from addr to dst, big endian,
// zero in gaps: the data of a read response, without an intermediate slice.
func (d *Device) appendRegs(dst []byte, rt profile.RegType, addr, qty uint16) ([]byte, error) {
	if !d.Layout.inSpan(rt, addr, qty) {
		return dst, modbus.ErrIllegalDataAddress
	}
	start := len(dst)
	dst = append(dst, make([]byte, 2*int(qty))...)
	out := dst[start:]
	lo, hi := uint32(addr), uint32(addr)+uint32(qty)-1
	d.mu.RLock()
	for _, s := range d.Layout.tables[rt] {
		sLo, sHi := uint32(s.start), uint32(s.start)+uint32(s.n)-1
		if sHi < lo || sLo > hi {
			continue
		}
		from, to := max(sLo, lo), min(sHi, hi)
		for a := from; a <= to; a++ {
			r := d.regs[s.off+a-sLo]
			i := 2 * (a - lo)
			out[i], out[i+1] = byte(r>>8), byte(r)
		}
	}
	d.mu.RUnlock()
	return dst, nil
}

// write stores vals at addr of table rt; every address must belong to a
// point. The caller holds d.mu for writing.
func (d *Device) write(rt profile.RegType, addr uint16, vals []uint16) error {
	if len(vals) == 0 {
		return modbus.ErrIllegalDataAddress
	}
	s, off := d.Layout.find(rt, addr)
	if s == nil || off+len(vals) > int(s.n) {
		return modbus.ErrIllegalDataAddress
	}
	copy(d.regs[int(s.off)+off:], vals)
	return nil
}

// ReadRegisters returns qty registers of table rt from addr (bits as 0/1).
// Errors are modbus.Error values, unwrapped, so servers can map them to
// exception codes.
func (d *Device) ReadRegisters(rt profile.RegType, addr, qty uint16) ([]uint16, error) {
	if int(rt) >= len(d.Layout.tables) {
		return nil, modbus.ErrIllegalFunction
	}
	out := make([]uint16, qty)
	d.mu.RLock()
	err := d.read(rt, addr, qty, out)
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
	return d.write(rt, addr, vals)
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
	out := make(map[string]any, len(d.Layout.points))
	for name, ps := range d.Layout.points {
		regs := d.regs[ps.off : ps.off+ps.n]
		if ps.point.Type == profile.String {
			out[name] = ps.point.DecodeString(regs)
			continue
		}
		v := ps.point.Decode(regs)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			out[name] = nil
			continue
		}
		out[name] = v
	}
	return out
}

// CheckPoint returns an error naming the device and its profile unless
// the device has the point.
func (d *Device) CheckPoint(point string) error {
	_, err := d.slot(point)
	return err
}

func (d *Device) slot(point string) (slot, error) {
	ps, ok := d.Layout.points[point]
	if !ok {
		return slot{}, fmt.Errorf("device %s (profile %s) has no point %q", d.ID, d.Profile.Name, point)
	}
	return slot{point: ps.point, regs: d.regs[ps.off : ps.off+ps.n : ps.off+ps.n]}, nil
}

// readLocked is read under the read lock.
func (d *Device) readLocked(rt profile.RegType, addr, qty uint16, dst []uint16) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.read(rt, addr, qty, dst)
}
