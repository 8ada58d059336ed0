package devsrv

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/feederd/feederd/internal/profile"
)

// Fault is a protocol-level failure of one device, as a test rig injects it:
// the device keeps its values but answers Modbus badly or not at all. The
// zero Fault is a healthy device. Several fields may be set at once; the
// strongest wins: Refuse, then HalfOpen, then Silent, then Latency followed
// by Exceptions and BadCRC.
//
// What a field means depends on where the device is served. Its own TCP
// port (an endpoint serving only this device, not marked Gateway) fails as
// a whole: Refuse and HalfOpen act on the port and every unit ID on it. On
// a gateway port or an RTU bus the device is one unit among others: Refuse
// and HalfOpen act as Silent for that unit, the way a dead device behind a
// gateway or on a bus looks to the master.
type Fault struct {
	// Silent: read requests, never answer (timeouts at the client).
	Silent bool
	// Refuse: on its own TCP port, reset existing connections and refuse
	// new ones (connection refused); on a gateway or RTU bus, Silent.
	Refuse bool
	// Latency: answer after this delay. On an RTU bus and on a gateway
	// connection, requests queue behind the slow answer, as on a real
	// half-duplex line.
	Latency time.Duration
	// Exceptions: point name → exception code (1 illegal function, 2
	// illegal data address, 3 illegal data value, 4 server device failure,
	// 5 acknowledge, 6 server device busy, 8 memory parity error, 10 gateway
	// path unavailable, 11 gateway target failed to respond). Any request
	// whose address range covers one of these points, read or write, gets
	// that exception; when it covers several, the point with the lowest
	// address in the lowest table decides.
	Exceptions map[string]byte
	// BadCRC: on RTU (serial and RTU over TCP), answer with a corrupted
	// CRC. Modbus TCP has no CRC; there it does nothing.
	BadCRC bool
	// HalfOpen: on its own TCP port, keep connections open but stop
	// reading and answering, like a peer that vanished; connections
	// accepted meanwhile stall too. When the fault clears, the stalled
	// connections are reset, as a rebooted peer would. On a gateway or
	// RTU bus, Silent.
	HalfOpen bool
}

// IsZero reports whether f is no fault at all.
func (f Fault) IsZero() bool {
	return !f.Silent && !f.Refuse && f.Latency == 0 && len(f.Exceptions) == 0 && !f.BadCRC && !f.HalfOpen
}

// ValidException lists the exception codes of the Modbus application
// protocol specification (V1.1b3, section 7).
func ValidException(code byte) bool {
	switch code {
	case 1, 2, 3, 4, 5, 6, 8, 10, 11:
		return true
	}
	return false
}

// faultState is an installed Fault with its exceptions resolved to address
// ranges. It is immutable once stored.
type faultState struct {
	Fault
	exc []excRange // sorted by table, then address
}

type excRange struct {
	rt     profile.RegType
	lo, hi uint32 // hi exclusive
	code   byte
}

// CheckFault reports what SetFault would ignore in f: exceptions on points
// the device does not have, exception codes the protocol does not define,
// and a negative latency. A control API calls it before SetFault.
func (d *Device) CheckFault(f Fault) error {
	var errs []error
	if f.Latency < 0 {
		errs = append(errs, fmt.Errorf("fault on %s: latency %s is negative", d.ID, f.Latency))
	}
	for _, name := range slices.Sorted(maps.Keys(f.Exceptions)) {
		if _, ok := d.Layout.points[name]; !ok {
			errs = append(errs, fmt.Errorf("fault on %s: exception on %q: device (profile %s) has no such point", d.ID, name, d.Profile.Name))
		}
		if code := f.Exceptions[name]; !ValidException(code) {
			errs = append(errs, fmt.Errorf("fault on %s: exception on %q: %d is not a Modbus exception code (1-6, 8, 10, 11)", d.ID, name, code))
		}
	}
	return errors.Join(errs...)
}

// SetFault installs f, replacing the previous fault; the zero Fault clears
// it. Servers see it from their next request on; a device's own TCP port
// closes or reopens its listener at once. Exceptions on unknown points or
// with undefined codes and a negative latency are ignored (CheckFault
// reports them). f.Exceptions is copied.
func (d *Device) SetFault(f Fault) {
	d.watchMu.Lock()
	defer d.watchMu.Unlock()
	d.setFaultLocked(f)
}

// UpdateFault changes the installed fault in place: fn gets a copy of it
// (Exceptions included) to modify, and the result is installed as by
// SetFault. Concurrent SetFault and UpdateFault calls do not interleave, so
// a scenario and the control API can each add their part of a fault. fn
// must not call the device's fault methods.
func (d *Device) UpdateFault(fn func(f *Fault)) {
	d.watchMu.Lock()
	defer d.watchMu.Unlock()
	f := d.Fault()
	fn(&f)
	d.setFaultLocked(f)
}

func (d *Device) setFaultLocked(f Fault) {
	var st *faultState
	if !f.IsZero() {
		st = &faultState{Fault: f}
		st.Latency = max(st.Latency, 0)
		st.Exceptions = maps.Clone(f.Exceptions)
		for name, code := range f.Exceptions {
			ps, ok := d.Layout.points[name]
			if !ok || !ValidException(code) {
				continue
			}
			p := ps.point
			st.exc = append(st.exc, excRange{rt: p.RegType, lo: uint32(p.Address), hi: uint32(p.Address) + uint32(p.Words()), code: code})
		}
		sort.Slice(st.exc, func(i, j int) bool {
			a, b := st.exc[i], st.exc[j]
			if a.rt != b.rt {
				return a.rt < b.rt
			}
			if a.lo != b.lo {
				return a.lo < b.lo
			}
			return a.code < b.code
		})
	}
	d.fault.Store(st)
	for _, w := range d.watch {
		w.fn()
	}
}

// Fault returns the installed fault (the zero Fault when healthy); its
// Exceptions map is a copy.
func (d *Device) Fault() Fault {
	st := d.fault.Load()
	if st == nil {
		return Fault{}
	}
	f := st.Fault
	f.Exceptions = maps.Clone(f.Exceptions)
	return f
}

// exception returns the injected exception code for a request on table rt
// covering addr..addr+qty-1, or 0.
func (st *faultState) exception(rt profile.RegType, addr, qty uint16) byte {
	lo, hi := uint32(addr), uint32(addr)+uint32(qty)
	for _, e := range st.exc {
		if e.rt == rt && e.lo < hi && lo < e.hi {
			return e.code
		}
	}
	return 0
}

type faultWatcher struct{ fn func() }

// watchFault calls fn after every SetFault and UpdateFault, in their
// goroutine and serialised with them, until stop is called. fn reads the
// fault itself and must not call the device's fault methods.
func (d *Device) watchFault(fn func()) (stop func()) {
	w := &faultWatcher{fn: fn}
	d.watchMu.Lock()
	d.watch = append(d.watch, w)
	d.watchMu.Unlock()
	return func() {
		d.watchMu.Lock()
		d.watch = slices.DeleteFunc(d.watch, func(x *faultWatcher) bool { return x == w })
		d.watchMu.Unlock()
	}
}
