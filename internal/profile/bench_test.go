package profile

import "testing"

// Package-level sinks keep the compiler from discarding the decoded values.
var (
	sinkFloat  float64
	sinkString string
)

func benchDecode(b *testing.B, p Point, regs []uint16) {
	b.ReportAllocs()
	for b.Loop() {
		sinkFloat = p.Decode(regs)
	}
}

func BenchmarkDecodeInt16(b *testing.B) {
	benchDecode(b, Point{Type: Int16, Scale: 0.1}, []uint16{0xFFFE})
}

func BenchmarkDecodeUint32(b *testing.B) {
	benchDecode(b, Point{Type: Uint32, Order: CDAB, Scale: 0.01}, []uint16{0x2800, 0xEE6B})
}

func BenchmarkDecodeFloat32(b *testing.B) {
	for _, o := range allOrders {
		p := Point{Type: Float32, Order: o}
		regs := make([]uint16, 2)
		p.Encode(123.456, regs)
		b.Run(o.String(), func(b *testing.B) { benchDecode(b, p, regs) })
	}
}

func BenchmarkDecodeFloat64(b *testing.B) {
	benchDecode(b, Point{Type: Float64, Order: DCBA}, []uint16{0x77BE, 0x9F1A, 0x2FDD, 0x5E40})
}

func BenchmarkDecodeInt64(b *testing.B) {
	benchDecode(b, Point{Type: Int64, Order: BADC}, []uint16{0xDCFE, 0x98BA, 0x5476, 0x0030})
}

func BenchmarkDecodeBit(b *testing.B) {
	benchDecode(b, Point{Type: Bit, BitPos: 13}, []uint16{0xA005})
}

func BenchmarkEncodeFloat32(b *testing.B) {
	p := Point{Type: Float32, Order: CDAB, Scale: 0.5}
	dst := make([]uint16, 2)
	b.ReportAllocs()
	for b.Loop() {
		p.Encode(123.456, dst)
	}
}

func BenchmarkDecodeString(b *testing.B) {
	p := Point{Type: String, Length: 8, Order: BADC}
	regs := make([]uint16, 8)
	p.EncodeString("FDR-101 RECLOSER", regs)
	b.ReportAllocs()
	for b.Loop() {
		sinkString = p.DecodeString(regs)
	}
}
