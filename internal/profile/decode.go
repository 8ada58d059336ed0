package profile

import (
	"math"
	"strings"
)

// Words is how many registers the point occupies (1 for coils and discrete
// inputs, which count bits).
func (p *Point) Words() int {
	switch p.Type {
	case Bool, Bit, Int16, Uint16:
		return 1
	case Int32, Uint32, Float32:
		return 2
	case Int64, Uint64, Float64:
		return 4
	case String:
		return int(p.Length)
	}
	return 1
}

// raw64 assembles n registers (1, 2 or 4) into an unsigned integer whose most
// significant byte is A, undoing the point's word order.
func (p *Point) raw64(raw []uint16) uint64 {
	n := p.Words()
	var v uint64
	for i := 0; i < n; i++ {
		w := raw[i]
		if p.Order == BADC || p.Order == DCBA {
			w = w<<8 | w>>8
		}
		if p.Order == CDAB || p.Order == DCBA {
			// low word first: register i holds word n-1-i
			v |= uint64(w) << (16 * uint(i))
		} else {
			v = v<<16 | uint64(w)
		}
	}
	return v
}

// RawValue decodes registers into the unscaled value. raw must hold at least
// Words() registers; Bool points are decoded by the caller from bits.
func (p *Point) RawValue(raw []uint16) float64 {
	switch p.Type {
	case Bool:
		if raw[0] != 0 {
			return 1
		}
		return 0
	case Bit:
		return float64(raw[0] >> p.BitPos & 1)
	case Int16:
		return float64(int16(p.raw64(raw)))
	case Uint16:
		return float64(uint16(p.raw64(raw)))
	case Int32:
		return float64(int32(p.raw64(raw)))
	case Uint32:
		return float64(uint32(p.raw64(raw)))
	case Int64:
		return float64(int64(p.raw64(raw)))
	case Uint64:
		return float64(p.raw64(raw))
	case Float32:
		return float64(math.Float32frombits(uint32(p.raw64(raw))))
	case Float64:
		return math.Float64frombits(p.raw64(raw))
	}
	return math.NaN()
}

// Decode returns the engineering value: raw*Scale + Offset. Bools and bits
// are never scaled. A NaN or Inf result means the device sent a non-number
// (many meters send NaN for "not available"); callers mark it Invalid.
func (p *Point) Decode(raw []uint16) float64 {
	v := p.RawValue(raw)
	if p.Type == Bool || p.Type == Bit {
		return v
	}
	s := p.Scale
	if s == 0 || s == 1 {
		return v + p.Offset
	}
	// Manuals scale by powers of ten: 5998 × 0.01 is 59.980000000000004 in
	// floating point, 5998 / 100 is 59.98. Divide when the scale is the
	// inverse of a whole number, so values read back as the device meant.
	if inv := 1 / s; inv > 1 && inv == math.Trunc(inv) {
		return v/inv + p.Offset
	}
	return v*s + p.Offset
}

// FloatBits is the precision, 32 or 64, of the point's decoded values: 32
// for a float32 point that is neither scaled nor offset, whose values are
// then printed as the shortest decimal that reads back as the same float32
// (59.98, not 59.97999954223633), 64 for every other point. The InfluxDB
// encoder and probe both print values with it.
func (p *Point) FloatBits() int {
	if p.Type == Float32 && (p.Scale == 0 || p.Scale == 1) && p.Offset == 0 {
		return 32
	}
	return 64
}

// DecodeString returns a String point's text, trailing NULs and spaces cut.
func (p *Point) DecodeString(raw []uint16) string {
	b := make([]byte, 0, 2*len(raw))
	for _, w := range raw[:p.Words()] {
		hi, lo := byte(w>>8), byte(w)
		if p.Order == BADC || p.Order == DCBA {
			hi, lo = lo, hi
		}
		b = append(b, hi, lo)
	}
	return strings.TrimRight(string(b), "\x00 ")
}

// Encode is Decode's inverse: it writes the registers that make Decode
// return v (to within the type's precision) into dst, which must hold
// Words() registers. The simulator serves values with it.
func (p *Point) Encode(v float64, dst []uint16) {
	if p.Type != Bool && p.Type != Bit {
		s := p.Scale
		if s == 0 {
			s = 1
		}
		v = (v - p.Offset) / s
	}
	var u uint64
	switch p.Type {
	case Bool:
		if v != 0 {
			dst[0] = 1
		} else {
			dst[0] = 0
		}
		return
	case Bit:
		mask := uint16(1) << p.BitPos
		if v != 0 {
			dst[0] |= mask
		} else {
			dst[0] &^= mask
		}
		return
	case Int16:
		u = uint64(uint16(int16(clampRound(v, math.MinInt16, math.MaxInt16))))
	case Uint16:
		u = uint64(uint16(clampRound(v, 0, math.MaxUint16)))
	case Int32:
		u = uint64(uint32(int32(clampRound(v, math.MinInt32, math.MaxInt32))))
	case Uint32:
		u = uint64(uint32(clampRound(v, 0, math.MaxUint32)))
	case Int64:
		u = uint64(clampInt64(v))
	case Uint64:
		u = clampUint64(v)
	case Float32:
		u = uint64(math.Float32bits(float32(v)))
	case Float64:
		u = math.Float64bits(v)
	case String:
		return
	}
	p.putRaw64(u, dst)
}

// EncodeString writes s into a String point's registers, NUL padded.
func (p *Point) EncodeString(s string, dst []uint16) {
	n := p.Words()
	for i := 0; i < n; i++ {
		var hi, lo byte
		if 2*i < len(s) {
			hi = s[2*i]
		}
		if 2*i+1 < len(s) {
			lo = s[2*i+1]
		}
		if p.Order == BADC || p.Order == DCBA {
			hi, lo = lo, hi
		}
		dst[i] = uint16(hi)<<8 | uint16(lo)
	}
}

func (p *Point) putRaw64(u uint64, dst []uint16) {
	n := p.Words()
	for i := 0; i < n; i++ {
		var w uint16
		if p.Order == CDAB || p.Order == DCBA {
			w = uint16(u >> (16 * uint(i)))
		} else {
			w = uint16(u >> (16 * uint(n-1-i)))
		}
		if p.Order == BADC || p.Order == DCBA {
			w = w<<8 | w>>8
		}
		dst[i] = w
	}
}

func clampRound(v, lo, hi float64) float64 {
	v = math.Round(v)
	if v < lo || math.IsNaN(v) {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// clampInt64 and clampUint64 exist because math.MaxInt64 and math.MaxUint64
// round up to 2^63 and 2^64 as float64, and converting those back to the
// integer type is implementation-defined (amd64 yields 0x8000000000000000,
// turning a large positive value into MinInt64).
func clampInt64(v float64) int64 {
	v = math.Round(v)
	switch {
	case math.IsNaN(v) || v < -0x1p63:
		return math.MinInt64
	case v >= 0x1p63:
		return math.MaxInt64
	}
	return int64(v)
}

func clampUint64(v float64) uint64 {
	v = math.Round(v)
	switch {
	case math.IsNaN(v) || v < 0:
		return 0
	case v >= 0x1p64:
		return math.MaxUint64
	}
	return uint64(v)
}
