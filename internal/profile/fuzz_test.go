package profile

import (
	"math"
	"slices"
	"testing"
)

// FuzzDecode decodes arbitrary registers as every type and word order:
// Decode never panics, and for the types whose every value a float64 holds
// exactly, Encode(Decode(raw)) gives back raw.
func FuzzDecode(f *testing.F) {
	f.Add(uint8(Int16), uint8(ABCD), uint8(0), []byte{0xFF, 0xFE})
	f.Add(uint8(Float32), uint8(CDAB), uint8(0), []byte{0x00, 0x00, 0x43, 0x67})
	f.Add(uint8(Float64), uint8(DCBA), uint8(0), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(uint8(Bit), uint8(ABCD), uint8(15), []byte{0x80, 0x00})
	f.Add(uint8(String), uint8(BADC), uint8(0), []byte("ELSEWHERE\x00"))
	f.Fuzz(func(t *testing.T, typ, order, bit uint8, raw []byte) {
		words := make([]uint16, len(raw)/2)
		for i := range words {
			words[i] = uint16(raw[2*i])<<8 | uint16(raw[2*i+1])
		}
		p := &Point{Name: "p", RegType: Holding, Type: DataType(typ % uint8(len(dataTypeNames))),
			Order: WordOrder(order % 4), BitPos: bit % 16, Length: uint16(len(words)), Scale: 1}
		if len(words) == 0 || len(words) < p.Words() {
			return
		}
		in := words[:p.Words()]
		if p.Type == String {
			s := p.DecodeString(in)
			out := make([]uint16, len(in))
			p.EncodeString(s, out)
			if p.DecodeString(out) != s {
				t.Fatalf("string %q does not survive encoding", s)
			}
			return
		}
		v := p.Decode(in)
		out := slices.Clone(in)
		switch p.Type {
		case Bool, Bit:
			if v != 0 && v != 1 {
				t.Fatalf("%v decodes %v to %v, want 0 or 1", p.Type, in, v)
			}
			if p.Type == Bool {
				return
			}
		case Float32, Float64:
			if math.IsNaN(v) {
				return // NaN payloads need not survive; the poller marks NaN invalid
			}
			if v == 0 {
				return // -0 and +0 are one reading: -0 decodes to 0, which encodes as +0
			}
		case Int64, Uint64:
			if math.Abs(v) > 1<<53 {
				return // beyond float64's exact integers
			}
		}
		p.Encode(v, out)
		if !slices.Equal(out, in) {
			t.Fatalf("%v %v: %v decodes to %v, which encodes to %v", p.Type, p.Order, in, v, out)
		}
	})
}
