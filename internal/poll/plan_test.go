package poll

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
)

func hr(addr uint16, t profile.DataType) profile.Point {
	return profile.Point{RegType: profile.Holding, Address: addr, Type: t}
}

// planText renders a plan as "request: index@offset ...", one line per request.
func planText(plan []Request) []string {
	var out []string
	for _, r := range plan {
		var b strings.Builder
		b.WriteString(r.String())
		b.WriteString(":")
		for _, ref := range r.Points {
			fmt.Fprintf(&b, " %d@%d", ref.Index, ref.Offset)
		}
		out = append(out, b.String())
	}
	return out
}

func TestBuildPlan(t *testing.T) {
	bit := func(addr uint16, pos uint8) profile.Point {
		return profile.Point{RegType: profile.Holding, Address: addr, Type: profile.Bit, BitPos: pos}
	}
	coil := func(addr uint16) profile.Point {
		return profile.Point{RegType: profile.Coil, Address: addr, Type: profile.Bool}
	}
	// gap10 is what the config package fills in when max_gap is absent.
	gap10 := config.Quirks{MaxGap: 10}
	for _, tc := range []struct {
		name   string
		points []profile.Point
		quirks config.Quirks
		want   []string
	}{
		{"empty", nil, config.Quirks{}, nil},
		{"contiguous points coalesce",
			[]profile.Point{hr(0, profile.Uint16), hr(1, profile.Int16), hr(2, profile.Float32)}, config.Quirks{},
			[]string{"read holding registers 0..3: 0@0 1@1 2@2"}},
		{"addresses out of order",
			[]profile.Point{hr(2, profile.Float32), hr(0, profile.Uint16)}, gap10,
			[]string{"read holding registers 0..3: 1@0 0@2"}},
		{"gap of exactly max_gap 10 is filled",
			[]profile.Point{hr(0, profile.Uint16), hr(11, profile.Uint16)}, gap10,
			[]string{"read holding registers 0..11: 0@0 1@11"}},
		{"gap of max_gap+1 splits",
			[]profile.Point{hr(0, profile.Uint16), hr(12, profile.Uint16)}, gap10,
			[]string{"read holding registers 0..0: 0@0", "read holding registers 12..12: 1@0"}},
		{"gap after a wide point counts from its end",
			[]profile.Point{hr(0, profile.Float64), hr(14, profile.Uint16)}, gap10,
			[]string{"read holding registers 0..14: 0@0 1@14"}},
		{"max_gap 0: touching points share a request",
			[]profile.Point{hr(0, profile.Uint16), hr(1, profile.Uint16), hr(2, profile.Float32), hr(4, profile.Int16)}, config.Quirks{},
			[]string{"read holding registers 0..4: 0@0 1@1 2@2 3@4"}},
		{"max_gap 0: a gap of one register splits",
			[]profile.Point{hr(0, profile.Uint16), hr(2, profile.Uint16), hr(4, profile.Float32)}, config.Quirks{},
			[]string{"read holding registers 0..0: 0@0", "read holding registers 2..2: 1@0", "read holding registers 4..5: 2@0"}},
		{"max_gap 0: overlapping points share a request",
			[]profile.Point{bit(5, 0), hr(5, profile.Int32), hr(6, profile.Uint16), bit(6, 9)}, config.Quirks{},
			[]string{"read holding registers 5..6: 0@0 1@0 2@1 3@1"}},
		{"max_gap 0: a gap of one bit splits",
			[]profile.Point{coil(0), coil(1), coil(3)}, config.Quirks{},
			[]string{"read coils 0..1: 0@0 1@1", "read coils 3..3: 2@0"}},
		{"max_gap 3: gap 3 filled",
			[]profile.Point{hr(0, profile.Uint16), hr(4, profile.Uint16)}, config.Quirks{MaxGap: 3},
			[]string{"read holding registers 0..4: 0@0 1@4"}},
		{"max_gap 3: gap 4 splits",
			[]profile.Point{hr(0, profile.Uint16), hr(5, profile.Uint16)}, config.Quirks{MaxGap: 3},
			[]string{"read holding registers 0..0: 0@0", "read holding registers 5..5: 1@0"}},
		{"125 registers fit one request",
			[]profile.Point{hr(0, profile.Uint16), hr(121, profile.Float64)}, config.Quirks{MaxGap: 200},
			[]string{"read holding registers 0..124: 0@0 1@121"}},
		{"a 4-register point at 122 starts a new request",
			[]profile.Point{hr(0, profile.Uint16), hr(122, profile.Float64)}, config.Quirks{MaxGap: 200},
			[]string{"read holding registers 0..0: 0@0", "read holding registers 122..125: 1@0"}},
		{"a 4-register point at 123 starts a new request",
			[]profile.Point{hr(0, profile.Uint16), hr(120, profile.Uint16), hr(123, profile.Float64)}, config.Quirks{MaxGap: 200},
			[]string{"read holding registers 0..120: 0@0 1@120", "read holding registers 123..126: 2@0"}},
		{"max_registers 0 means 125: a long run splits at 125",
			func() []profile.Point {
				var ps []profile.Point
				for a := uint16(0); a < 130; a += 2 {
					ps = append(ps, hr(a, profile.Float32))
				}
				return ps
			}(), config.Quirks{},
			[]string{
				"read holding registers 0..123: " + refs(0, 62, 2),
				"read holding registers 124..129: 62@0 63@2 64@4",
			}},
		{"max_registers quirk",
			[]profile.Point{hr(0, profile.Uint16), hr(9, profile.Uint16), hr(10, profile.Uint16)}, config.Quirks{MaxRegisters: 10, MaxGap: 10},
			[]string{"read holding registers 0..9: 0@0 1@9", "read holding registers 10..10: 2@0"}},
		{"max_registers above 125 is cut to 125",
			[]profile.Point{hr(0, profile.Uint16), hr(125, profile.Uint16)}, config.Quirks{MaxRegisters: 300, MaxGap: 500},
			[]string{"read holding registers 0..0: 0@0", "read holding registers 125..125: 1@0"}},
		{"a point wider than max_registers gets its own request",
			[]profile.Point{hr(0, profile.Uint16), hr(1, profile.Float64)}, config.Quirks{MaxRegisters: 2},
			[]string{"read holding registers 0..0: 0@0", "read holding registers 1..4: 1@0"}},
		{"2000 bits fit one request",
			[]profile.Point{coil(0), coil(1999)}, config.Quirks{MaxGap: 5000},
			[]string{"read coils 0..1999: 0@0 1@1999"}},
		{"the 2001st bit starts a new request",
			[]profile.Point{coil(0), coil(2000)}, config.Quirks{MaxGap: 5000},
			[]string{"read coils 0..0: 0@0", "read coils 2000..2000: 1@0"}},
		{"max_bits quirk and bit gaps",
			[]profile.Point{coil(0), coil(7), coil(8), coil(30)}, config.Quirks{MaxBits: 8, MaxGap: 10},
			[]string{"read coils 0..7: 0@0 1@7", "read coils 8..8: 2@0", "read coils 30..30: 3@0"}},
		{"bits of one register share the read",
			[]profile.Point{bit(5, 0), bit(5, 3), hr(5, profile.Uint16), bit(5, 15)}, gap10,
			[]string{"read holding registers 5..5: 0@0 1@0 2@0 3@0"}},
		{"overlapping points share registers",
			[]profile.Point{hr(10, profile.Int32), hr(11, profile.Uint16), bit(11, 2)}, gap10,
			[]string{"read holding registers 10..11: 0@0 1@1 2@1"}},
		{"tables are read apart, in table order",
			[]profile.Point{
				{RegType: profile.Input, Address: 0, Type: profile.Uint16},
				hr(0, profile.Uint16),
				{RegType: profile.DiscreteInput, Address: 0, Type: profile.Bool},
				coil(0),
				hr(1, profile.Uint16),
			}, config.Quirks{},
			[]string{
				"read coils 0..0: 3@0", "read discrete inputs 0..0: 2@0",
				"read holding registers 0..1: 1@0 4@1", "read input registers 0..0: 0@0",
			}},
		{"one request per point",
			[]profile.Point{hr(0, profile.Uint16), hr(1, profile.Uint16), hr(2, profile.Float32)}, config.Quirks{OneRequestPerPoint: true},
			[]string{"read holding registers 0..0: 0@0", "read holding registers 1..1: 1@0", "read holding registers 2..3: 2@0"}},
		{"one request per point still shares identical ranges",
			[]profile.Point{bit(5, 0), bit(5, 1), hr(5, profile.Int32)}, config.Quirks{OneRequestPerPoint: true},
			[]string{"read holding registers 5..6: 2@0", "read holding registers 5..5: 0@0 1@0"}},
		{"a string is never split",
			[]profile.Point{hr(0, profile.Uint16), {RegType: profile.Holding, Address: 120, Type: profile.String, Length: 8}}, config.Quirks{MaxGap: 200},
			[]string{"read holding registers 0..0: 0@0", "read holding registers 120..127: 1@0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := planText(BuildPlan(tc.points, tc.quirks))
			if !slices.Equal(got, tc.want) {
				t.Errorf("plan:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// refs renders points from..to-1 at offsets step apart.
func refs(from, to, step int) string {
	var parts []string
	for i := from; i < to; i++ {
		parts = append(parts, fmt.Sprintf("%d@%d", i, (i-from)*step))
	}
	return strings.Join(parts, " ")
}

func TestRequestString(t *testing.T) {
	for _, tc := range []struct {
		r    Request
		want string
	}{
		{Request{Table: profile.Holding, Start: 3027, Count: 6}, "read holding registers 3027..3032"},
		{Request{Table: profile.Input, Start: 0, Count: 1}, "read input registers 0..0"},
		{Request{Table: profile.Coil, Start: 16, Count: 16}, "read coils 16..31"},
		{Request{Table: profile.DiscreteInput, Start: 65535, Count: 1}, "read discrete inputs 65535..65535"},
		{Request{Table: 9, Start: 1, Count: 2}, "read regtype(9) 1..2"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.r.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFormatPlan(t *testing.T) {
	dev := &config.Device{
		ID: "F101-R2", Unit: 3,
		Link: &config.Link{ID: "sub1", URL: "tcp://10.1.2.3:502"},
		Points: []profile.Point{
			{Name: "va", RegType: profile.Holding, Address: 3027, Type: profile.Float32},
			{Name: "vb", RegType: profile.Holding, Address: 3029, Type: profile.Float32},
			{Name: "vc", RegType: profile.Holding, Address: 3031, Type: profile.Float32},
			{Name: "closed", RegType: profile.Coil, Address: 0, Type: profile.Bool},
		},
	}
	var b strings.Builder
	if err := FormatPlan(&b, dev, BuildPlan(dev.Points, dev.Quirks)); err != nil {
		t.Fatal(err)
	}
	want := `device F101-R2, unit 3 on sub1 (tcp://10.1.2.3:502): 4 points in 2 requests
#  FUNCTION                FIRST  LAST  COUNT  POINTS
1  read coils              0      0     1      closed
2  read holding registers  3027   3032  6      va, vb, vc
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func BenchmarkBuildPlan(b *testing.B) {
	// A large relay profile: 200 points over holding and input registers
	// with gaps, plus 64 status bits and 32 coils.
	var points []profile.Point
	for i := range 100 {
		points = append(points, hr(uint16(3000+i*2+i/10*12), profile.Float32))
	}
	for i := range 100 {
		points = append(points, profile.Point{RegType: profile.Input, Address: uint16(i * 3), Type: profile.Int16})
	}
	for i := range 64 {
		points = append(points, profile.Point{RegType: profile.Holding, Address: uint16(100 + i/16), Type: profile.Bit, BitPos: uint8(i % 16)})
	}
	for i := range 32 {
		points = append(points, profile.Point{RegType: profile.Coil, Address: uint16(i), Type: profile.Bool})
	}
	b.ReportAllocs()
	for b.Loop() {
		BuildPlan(points, config.Quirks{MaxGap: 10})
	}
}
