package profile

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

var allOrders = []WordOrder{ABCD, CDAB, BADC, DCBA}

// vector is one value written out by hand in all four word orders.
type vector struct {
	name  string
	typ   DataType
	want  float64
	regs  [4][]uint16 // indexed by WordOrder
	isNaN bool
}

// The register images below are written out by hand from the value's
// big-endian bytes A B C D (E F G H): CDAB reverses the order of the
// 16-bit words, BADC swaps the bytes inside each word, DCBA does both.
var vectors = []vector{
	{name: "int16 -2", typ: Int16, want: -2, regs: [4][]uint16{
		ABCD: {0xFFFE}, CDAB: {0xFFFE}, BADC: {0xFEFF}, DCBA: {0xFEFF}}},
	{name: "int16 min", typ: Int16, want: -32768, regs: [4][]uint16{
		ABCD: {0x8000}, CDAB: {0x8000}, BADC: {0x0080}, DCBA: {0x0080}}},
	{name: "int16 300", typ: Int16, want: 300, regs: [4][]uint16{
		ABCD: {0x012C}, CDAB: {0x012C}, BADC: {0x2C01}, DCBA: {0x2C01}}},
	{name: "uint16 0xABCD", typ: Uint16, want: 0xABCD, regs: [4][]uint16{
		ABCD: {0xABCD}, CDAB: {0xABCD}, BADC: {0xCDAB}, DCBA: {0xCDAB}}},
	{name: "int32 -123456789", typ: Int32, want: -123456789, regs: [4][]uint16{ // 0xF8A432EB
		ABCD: {0xF8A4, 0x32EB}, CDAB: {0x32EB, 0xF8A4}, BADC: {0xA4F8, 0xEB32}, DCBA: {0xEB32, 0xA4F8}}},
	{name: "uint32 4000000000", typ: Uint32, want: 4000000000, regs: [4][]uint16{ // 0xEE6B2800
		ABCD: {0xEE6B, 0x2800}, CDAB: {0x2800, 0xEE6B}, BADC: {0x6BEE, 0x0028}, DCBA: {0x0028, 0x6BEE}}},
	{name: "int64 positive", typ: Int64, want: 0x001F020304050607, regs: [4][]uint16{
		ABCD: {0x001F, 0x0203, 0x0405, 0x0607}, CDAB: {0x0607, 0x0405, 0x0203, 0x001F},
		BADC: {0x1F00, 0x0302, 0x0504, 0x0706}, DCBA: {0x0706, 0x0504, 0x0302, 0x1F00}}},
	{name: "int64 negative", typ: Int64, want: -0x0123456789ABD000, regs: [4][]uint16{ // 0xFEDCBA9876543000
		ABCD: {0xFEDC, 0xBA98, 0x7654, 0x3000}, CDAB: {0x3000, 0x7654, 0xBA98, 0xFEDC},
		BADC: {0xDCFE, 0x98BA, 0x5476, 0x0030}, DCBA: {0x0030, 0x5476, 0x98BA, 0xDCFE}}},
	{name: "uint64 above 2^63", typ: Uint64, want: 0xFEDCBA9876543000, regs: [4][]uint16{
		ABCD: {0xFEDC, 0xBA98, 0x7654, 0x3000}, CDAB: {0x3000, 0x7654, 0xBA98, 0xFEDC},
		BADC: {0xDCFE, 0x98BA, 0x5476, 0x0030}, DCBA: {0x0030, 0x5476, 0x98BA, 0xDCFE}}},
	{name: "float32 123.456", typ: Float32, want: float64(float32(123.456)), regs: [4][]uint16{ // 0x42F6E979
		ABCD: {0x42F6, 0xE979}, CDAB: {0xE979, 0x42F6}, BADC: {0xF642, 0x79E9}, DCBA: {0x79E9, 0xF642}}},
	{name: "float32 -1.5", typ: Float32, want: -1.5, regs: [4][]uint16{ // 0xBFC00000
		ABCD: {0xBFC0, 0x0000}, CDAB: {0x0000, 0xBFC0}, BADC: {0xC0BF, 0x0000}, DCBA: {0x0000, 0xC0BF}}},
	{name: "float32 +Inf", typ: Float32, want: math.Inf(1), regs: [4][]uint16{ // 0x7F800000
		ABCD: {0x7F80, 0x0000}, CDAB: {0x0000, 0x7F80}, BADC: {0x807F, 0x0000}, DCBA: {0x0000, 0x807F}}},
	{name: "float32 -Inf", typ: Float32, want: math.Inf(-1), regs: [4][]uint16{ // 0xFF800000
		ABCD: {0xFF80, 0x0000}, CDAB: {0x0000, 0xFF80}, BADC: {0x80FF, 0x0000}, DCBA: {0x0000, 0x80FF}}},
	{name: "float32 NaN", typ: Float32, isNaN: true, regs: [4][]uint16{ // 0x7FC00000
		ABCD: {0x7FC0, 0x0000}, CDAB: {0x0000, 0x7FC0}, BADC: {0xC07F, 0x0000}, DCBA: {0x0000, 0xC07F}}},
	{name: "float64 123.456", typ: Float64, want: 123.456, regs: [4][]uint16{ // 0x405EDD2F1A9FBE77
		ABCD: {0x405E, 0xDD2F, 0x1A9F, 0xBE77}, CDAB: {0xBE77, 0x1A9F, 0xDD2F, 0x405E},
		BADC: {0x5E40, 0x2FDD, 0x9F1A, 0x77BE}, DCBA: {0x77BE, 0x9F1A, 0x2FDD, 0x5E40}}},
	{name: "float64 -0.1", typ: Float64, want: -0.1, regs: [4][]uint16{ // 0xBFB999999999999A
		ABCD: {0xBFB9, 0x9999, 0x9999, 0x999A}, CDAB: {0x999A, 0x9999, 0x9999, 0xBFB9},
		BADC: {0xB9BF, 0x9999, 0x9999, 0x9A99}, DCBA: {0x9A99, 0x9999, 0x9999, 0xB9BF}}},
	{name: "float64 NaN", typ: Float64, isNaN: true, regs: [4][]uint16{ // 0x7FF8000000000000
		ABCD: {0x7FF8, 0, 0, 0}, CDAB: {0, 0, 0, 0x7FF8}, BADC: {0xF87F, 0, 0, 0}, DCBA: {0, 0, 0, 0xF87F}}},
	{name: "float64 -Inf", typ: Float64, want: math.Inf(-1), regs: [4][]uint16{ // 0xFFF0000000000000
		ABCD: {0xFFF0, 0, 0, 0}, CDAB: {0, 0, 0, 0xFFF0}, BADC: {0xF0FF, 0, 0, 0}, DCBA: {0, 0, 0, 0xF0FF}}},
}

func TestDecodeVectors(t *testing.T) {
	for _, v := range vectors {
		for _, o := range allOrders {
			t.Run(v.name+"/"+o.String(), func(t *testing.T) {
				p := Point{Type: v.typ, Order: o}
				regs := v.regs[o]
				if len(regs) != p.Words() {
					t.Fatalf("vector has %d registers, %s needs %d", len(regs), v.typ, p.Words())
				}
				got := p.Decode(regs)
				if v.isNaN {
					if !math.IsNaN(got) {
						t.Fatalf("Decode(%04X) = %v, want NaN", regs, got)
					}
				} else if got != v.want {
					t.Fatalf("Decode(%04X) = %v, want %v", regs, got, v.want)
				}

				// Encode must produce the same registers from the value.
				if v.isNaN {
					return
				}
				dst := make([]uint16, p.Words())
				p.Encode(v.want, dst)
				if !slices.Equal(dst, regs) {
					t.Fatalf("Encode(%v) = %04X, want %04X", v.want, dst, regs)
				}
			})
		}
	}
}

func TestDecodeScaleOffset(t *testing.T) {
	tests := []struct {
		name   string
		p      Point
		regs   []uint16
		want   float64
		encode bool // Encode(want) must give regs back
	}{
		{"zero scale means 1", Point{Type: Uint16}, []uint16{2345}, 2345, true},
		{"scale", Point{Type: Uint16, Scale: 0.25}, []uint16{2345}, 586.25, true},
		{"scale and offset", Point{Type: Uint16, Scale: 0.25, Offset: -40}, []uint16{2345}, 546.25, true},
		{"offset only", Point{Type: Int16, Offset: 100}, []uint16{0xFFFE}, 98, true},
		{"negative scale", Point{Type: Int16, Scale: -2}, []uint16{0x0005}, -10, true},
		{"scaled int32 CDAB", Point{Type: Int32, Order: CDAB, Scale: 0.001}, []uint16{0x32EB, 0xF8A4}, -123456.789, false},
		{"scaled float32", Point{Type: Float32, Scale: 2, Offset: 1}, []uint16{0xBFC0, 0x0000}, -2, true},
		{"bit is not scaled", Point{Type: Bit, BitPos: 3, Scale: 10, Offset: 5}, []uint16{0x0008}, 1, true},
		{"bool is not scaled", Point{Type: Bool, Scale: 10, Offset: 5}, []uint16{1}, 1, true},
		{"bool zero", Point{Type: Bool, Scale: 10, Offset: 5}, []uint16{0}, 0, true},
		{"NaN passes through scaling", Point{Type: Float32, Scale: 0.5, Offset: 3}, []uint16{0x7FC0, 0}, math.NaN(), false},
		{"Inf passes through scaling", Point{Type: Float32, Scale: 0.5, Offset: 3}, []uint16{0x7F80, 0}, math.Inf(1), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.p.Decode(tc.regs)
			if math.IsNaN(tc.want) {
				if !math.IsNaN(got) {
					t.Fatalf("Decode = %v, want NaN", got)
				}
				return
			}
			if tc.encode && got != tc.want || !tc.encode && math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("Decode = %v, want %v", got, tc.want)
			}
			if !tc.encode {
				return
			}
			dst := make([]uint16, tc.p.Words())
			tc.p.Encode(tc.want, dst)
			if !slices.Equal(dst, tc.regs) {
				t.Fatalf("Encode(%v) = %04X, want %04X", tc.want, dst, tc.regs)
			}
		})
	}
}

func TestDecodeBit(t *testing.T) {
	const reg = 0xA005 // bits 15, 13, 2 and 0 set
	want := map[uint8]float64{0: 1, 1: 0, 2: 1, 3: 0, 12: 0, 13: 1, 14: 0, 15: 1}
	for bit, w := range want {
		for _, o := range allOrders {
			// The bit number counts in the register as received: the word
			// order describes multi-byte values and does not apply here.
			t.Run(fmt.Sprintf("%s/bit%d", o, bit), func(t *testing.T) {
				p := Point{Type: Bit, BitPos: bit, Order: o}
				if got := p.Decode([]uint16{reg}); got != w {
					t.Fatalf("bit %d of %04X = %v, want %v", bit, reg, got, w)
				}
			})
		}
	}
}

func TestEncodeBitKeepsOtherBits(t *testing.T) {
	tests := []struct {
		name  string
		bit   uint8
		v     float64
		start uint16
		want  uint16
	}{
		{"set bit 4", 4, 1, 0xA005, 0xA015},
		{"clear bit 15", 15, 0, 0xA005, 0x2005},
		{"set already set", 0, 1, 0xA005, 0xA005},
		{"clear already clear", 1, 0, 0xA005, 0xA005},
		{"nonzero means set", 8, 42, 0x0000, 0x0100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Point{Type: Bit, BitPos: tc.bit}
			dst := []uint16{tc.start}
			p.Encode(tc.v, dst)
			if dst[0] != tc.want {
				t.Fatalf("Encode bit %d = %v into %04X = %04X, want %04X", tc.bit, tc.v, tc.start, dst[0], tc.want)
			}
		})
	}
}

func TestDecodeString(t *testing.T) {
	// "FDR-101" in 4 registers: 'F''D' 'R''-' '1''0' '1'NUL.
	hiFirst := []uint16{0x4644, 0x522D, 0x3130, 0x3100}
	swapped := []uint16{0x4446, 0x2D52, 0x3031, 0x0031}
	tests := []struct {
		name  string
		order WordOrder
		regs  []uint16
		want  string
	}{
		{"ABCD", ABCD, hiFirst, "FDR-101"},
		// Strings are byte sequences: only the byte swap inside a word applies.
		{"CDAB", CDAB, hiFirst, "FDR-101"},
		{"BADC", BADC, swapped, "FDR-101"},
		{"DCBA", DCBA, swapped, "FDR-101"},
		{"trailing spaces cut", ABCD, []uint16{0x4142, 0x2020, 0x2000, 0x0000}, "AB"},
		{"inner spaces kept", ABCD, []uint16{0x4120, 0x4200, 0x0000, 0x0000}, "A B"},
		{"all NUL", ABCD, []uint16{0, 0, 0, 0}, ""},
		{"full length", ABCD, []uint16{0x3132, 0x3334, 0x3536, 0x3738}, "12345678"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Point{Type: String, Length: 4, Order: tc.order}
			if got := p.DecodeString(tc.regs); got != tc.want {
				t.Fatalf("DecodeString(%04X) = %q, want %q", tc.regs, got, tc.want)
			}
		})
	}

	// Extra registers beyond Length are ignored.
	p := Point{Type: String, Length: 2}
	if got := p.DecodeString([]uint16{0x4142, 0x4344, 0x4546}); got != "ABCD" {
		t.Fatalf("DecodeString with extra registers = %q, want %q", got, "ABCD")
	}
}

func TestEncodeString(t *testing.T) {
	tests := []struct {
		name  string
		order WordOrder
		s     string
		want  []uint16
	}{
		{"ABCD padded", ABCD, "FDR-101", []uint16{0x4644, 0x522D, 0x3130, 0x3100}},
		{"BADC padded", BADC, "FDR-101", []uint16{0x4446, 0x2D52, 0x3031, 0x0031}},
		{"truncated", ABCD, "0123456789", []uint16{0x3031, 0x3233, 0x3435, 0x3637}},
		{"empty", DCBA, "", []uint16{0, 0, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Point{Type: String, Length: 4, Order: tc.order}
			dst := []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}
			p.EncodeString(tc.s, dst)
			if !slices.Equal(dst, tc.want) {
				t.Fatalf("EncodeString(%q) = %04X, want %04X", tc.s, dst, tc.want)
			}
		})
	}
}

// TestEncodeClamps checks values outside a type's range: they saturate at
// the nearest bound instead of wrapping or producing implementation-defined
// float-to-integer conversions.
func TestEncodeClamps(t *testing.T) {
	tests := []struct {
		name string
		typ  DataType
		v    float64
		want []uint16 // ABCD
	}{
		{"int16 above", Int16, 40000, []uint16{0x7FFF}},
		{"int16 below", Int16, -40000, []uint16{0x8000}},
		{"int16 rounds", Int16, -1.5, []uint16{0xFFFE}},
		{"int16 NaN", Int16, math.NaN(), []uint16{0x8000}},
		{"uint16 negative", Uint16, -1, []uint16{0x0000}},
		{"uint16 above", Uint16, 70000, []uint16{0xFFFF}},
		{"int32 above", Int32, 1e12, []uint16{0x7FFF, 0xFFFF}},
		{"int32 below", Int32, -1e12, []uint16{0x8000, 0x0000}},
		{"uint32 above", Uint32, 1e12, []uint16{0xFFFF, 0xFFFF}},
		{"uint32 +Inf", Uint32, math.Inf(1), []uint16{0xFFFF, 0xFFFF}},
		{"int64 2^63", Int64, 0x1p63, []uint16{0x7FFF, 0xFFFF, 0xFFFF, 0xFFFF}},
		{"int64 above", Int64, 1e30, []uint16{0x7FFF, 0xFFFF, 0xFFFF, 0xFFFF}},
		{"int64 +Inf", Int64, math.Inf(1), []uint16{0x7FFF, 0xFFFF, 0xFFFF, 0xFFFF}},
		{"int64 -2^63", Int64, -0x1p63, []uint16{0x8000, 0x0000, 0x0000, 0x0000}},
		{"int64 below", Int64, -1e30, []uint16{0x8000, 0x0000, 0x0000, 0x0000}},
		{"int64 NaN", Int64, math.NaN(), []uint16{0x8000, 0x0000, 0x0000, 0x0000}},
		{"uint64 2^64", Uint64, 0x1p64, []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}},
		{"uint64 above", Uint64, 1e30, []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}},
		{"uint64 +Inf", Uint64, math.Inf(1), []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}},
		{"uint64 largest below 2^64", Uint64, 0x1p64 - 0x1p11, []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xF800}},
		{"uint64 2^63", Uint64, 0x1p63, []uint16{0x8000, 0x0000, 0x0000, 0x0000}},
		{"uint64 negative", Uint64, -5, []uint16{0, 0, 0, 0}},
		{"uint64 NaN", Uint64, math.NaN(), []uint16{0, 0, 0, 0}},
		{"float32 overflow is Inf", Float32, 1e40, []uint16{0x7F80, 0x0000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Point{Type: tc.typ}
			dst := make([]uint16, p.Words())
			p.Encode(tc.v, dst)
			if !slices.Equal(dst, tc.want) {
				t.Fatalf("Encode(%v) = %04X, want %04X", tc.v, dst, tc.want)
			}
		})
	}
}

// TestEncodeDecodeRoundTrip: for every type and word order, any value the
// type can hold exactly survives Encode then Decode, and any register image
// survives Decode then Encode where the decoded float64 is exact.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	gens := []struct {
		typ DataType
		gen *rapid.Generator[float64]
	}{
		{Int16, rapid.Map(rapid.Int16(), func(v int16) float64 { return float64(v) })},
		{Uint16, rapid.Map(rapid.Uint16(), func(v uint16) float64 { return float64(v) })},
		{Int32, rapid.Map(rapid.Int32(), func(v int32) float64 { return float64(v) })},
		{Uint32, rapid.Map(rapid.Uint32(), func(v uint32) float64 { return float64(v) })},
		// 64-bit integers: every value float64 holds exactly, i.e. a 53-bit
		// mantissa shifted anywhere inside the type's range.
		{Int64, rapid.Custom(func(t *rapid.T) float64 {
			m := rapid.Int64Range(-(1<<53-1), 1<<53-1).Draw(t, "mantissa")
			return math.Ldexp(float64(m), rapid.IntRange(0, 10).Draw(t, "shift"))
		})},
		{Uint64, rapid.Custom(func(t *rapid.T) float64 {
			m := rapid.Uint64Range(0, 1<<53-1).Draw(t, "mantissa")
			return math.Ldexp(float64(m), rapid.IntRange(0, 11).Draw(t, "shift"))
		})},
		{Float32, rapid.Map(rapid.Uint32(), func(b uint32) float64 {
			return float64(math.Float32frombits(b))
		})},
		{Float64, rapid.Map(rapid.Uint64(), math.Float64frombits)},
	}
	for _, g := range gens {
		for _, o := range allOrders {
			t.Run(g.typ.String()+"/"+o.String(), func(t *testing.T) {
				rapid.Check(t, func(t *rapid.T) {
					p := Point{Type: g.typ, Order: o}
					v := g.gen.Draw(t, "v")
					dst := make([]uint16, p.Words())
					p.Encode(v, dst)
					got := p.Decode(dst)
					if math.IsNaN(v) {
						if !math.IsNaN(got) {
							t.Fatalf("Encode/Decode(NaN) = %v", got)
						}
						return
					}
					if got != v {
						t.Fatalf("Encode(%v) = %04X, Decode = %v", v, dst, got)
					}
					again := make([]uint16, p.Words())
					p.Encode(got, again)
					if !slices.Equal(dst, again) {
						t.Fatalf("Encode(Decode(%04X)) = %04X", dst, again)
					}
				})
			})
		}
	}
}

// TestEncodeDecodeScaledRoundTrip: with power-of-two scales the arithmetic
// is exact, so Decode(Encode(v)) == v for any v the raw type holds.
func TestEncodeDecodeScaledRoundTrip(t *testing.T) {
	for _, typ := range []DataType{Int16, Uint16, Int32, Uint32, Float32, Float64} {
		for _, o := range allOrders {
			t.Run(typ.String()+"/"+o.String(), func(t *testing.T) {
				rapid.Check(t, func(t *rapid.T) {
					p := Point{Type: typ, Order: o,
						Scale:  math.Ldexp(1, rapid.IntRange(-8, 8).Draw(t, "scaleExp")),
						Offset: float64(rapid.IntRange(-1000, 1000).Draw(t, "offset")),
					}
					var raw float64
					switch typ {
					case Int16:
						raw = float64(rapid.Int16().Draw(t, "raw"))
					case Uint16:
						raw = float64(rapid.Uint16().Draw(t, "raw"))
					case Int32:
						raw = float64(rapid.Int32Range(-1<<24, 1<<24).Draw(t, "raw"))
					case Uint32:
						raw = float64(rapid.Uint32Range(0, 1<<24).Draw(t, "raw"))
					default:
						raw = float64(rapid.Int32Range(-1<<20, 1<<20).Draw(t, "raw"))
					}
					v := raw*p.Scale + p.Offset
					dst := make([]uint16, p.Words())
					p.Encode(v, dst)
					if got := p.Decode(dst); got != v {
						t.Fatalf("scale %v offset %v: Encode(%v) = %04X, Decode = %v", p.Scale, p.Offset, v, dst, got)
					}
				})
			})
		}
	}
}

func TestStringRoundTrip(t *testing.T) {
	for _, o := range allOrders {
		t.Run(o.String(), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				n := rapid.IntRange(1, 16).Draw(t, "registers")
				// Printable ASCII without trailing NULs or spaces, which
				// DecodeString cuts by design.
				s := rapid.StringMatching(`[!-~]([ -~]*[!-~])?`).Draw(t, "s")
				if len(s) > 2*n {
					s = s[:2*n]
				}
				for len(s) > 0 && s[len(s)-1] == ' ' {
					s = s[:len(s)-1]
				}
				p := Point{Type: String, Length: uint16(n), Order: o}
				dst := make([]uint16, n)
				p.EncodeString(s, dst)
				if got := p.DecodeString(dst); got != s {
					t.Fatalf("DecodeString(EncodeString(%q)) = %q", s, got)
				}
			})
		})
	}
}

func TestWords(t *testing.T) {
	tests := []struct {
		p    Point
		want int
	}{
		{Point{Type: Bool}, 1}, {Point{Type: Bit}, 1}, {Point{Type: Int16}, 1}, {Point{Type: Uint16}, 1},
		{Point{Type: Int32}, 2}, {Point{Type: Uint32}, 2}, {Point{Type: Float32}, 2},
		{Point{Type: Int64}, 4}, {Point{Type: Uint64}, 4}, {Point{Type: Float64}, 4},
		{Point{Type: String, Length: 10}, 10},
	}
	for _, tc := range tests {
		t.Run(tc.p.Type.String(), func(t *testing.T) {
			if got := tc.p.Words(); got != tc.want {
				t.Fatalf("Words() = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestDecimalScale: a scale of 0.01 gives the decimal the manual means, not
// the float product (5998 × 0.01 = 59.980000000000004).
func TestDecimalScale(t *testing.T) {
	for _, tc := range []struct {
		raw   uint16
		scale float64
		want  float64
	}{
		{5998, 0.01, 59.98},
		{97, 0.01, 0.97},
		{1234, 0.1, 123.4},
		{7, 0.001, 0.007},
		{3, 2.5, 7.5},
		{3, 0.4, 1.2000000000000002}, // not a power of ten: the plain product
	} {
		p := Point{Type: Int16, Scale: tc.scale}
		if got := p.Decode([]uint16{tc.raw}); got != tc.want {
			t.Errorf("%d × %v = %v, want %v", tc.raw, tc.scale, got, tc.want)
		}
	}
}
