package influx

import (
	"strconv"
	"strings"
	"testing"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/sample"
)

// TestFloatFieldRoundTrip: a float32 point's field is the shortest decimal
// that reads back as the same float32 (as probe prints it); a float64 point
// and a scaled float32 point keep every float64 digit.
func TestFloatFieldRoundTrip(t *testing.T) {
	f32 := profile.Point{Name: "f", RegType: profile.Holding, Type: profile.Float32}
	scaled := profile.Point{Name: "s", RegType: profile.Holding, Address: 2, Type: profile.Float32, Scale: 10}
	f64 := profile.Point{Name: "d", RegType: profile.Holding, Address: 4, Type: profile.Float64}
	m := &config.Model{Devices: []*config.Device{{ID: "D", Feeder: "F", Points: []profile.Point{f32, scaled, f64}}}}
	enc := NewEncoder(m)
	tests := []struct {
		v       float64 // as decoded: float64(float32(x)) for the float32 points
		f, s, d string
	}{
		{float64(float32(59.98)), "59.98", "599.7999954223633", "59.97999954223633"},
		{float64(float32(0.982)), "0.982", "9.819999933242798", "0.9819999933242798"},
		{float64(float32(230.1)), "230.1", "2301.0000610351562", "230.10000610351562"},
		{float64(float32(16777217)), "1.6777216e+07", "1.6777216e+08", "1.6777216e+07"},
		{float64(float32(1e-7)), "1e-07", "1.0000000116860974e-06", "1.0000000116860974e-07"},
	}
	for _, tt := range tests {
		t.Run(tt.f, func(t *testing.T) {
			samples := []sample.Sample{
				{Time: 1e18, Point: 0, Value: tt.v},
				{Time: 1e18, Point: 1, Value: tt.v * 10},
				{Time: 1e18, Point: 2, Value: tt.v, Flags: sample.EndOfPoll},
			}
			var st PollState
			line, _ := enc.Append(nil, &st, samples)
			want := "feeder_point,device=D,feeder=F f=" + tt.f + ",s=" + tt.s + ",d=" + tt.d + ",seq=0i 1000000000000\n"
			if string(line) != want {
				t.Fatalf("line\n%s want\n%s", line, want)
			}
			back, err := strconv.ParseFloat(tt.f, 32)
			if err != nil || float32(back) != float32(tt.v) {
				t.Errorf("%s reads back as float32 %v, want %v", tt.f, float32(back), float32(tt.v))
			}
			if strings.Contains(tt.f, "999") || strings.Contains(tt.f, "0000") {
				t.Errorf("%s is not the shortest form", tt.f)
			}
		})
	}
}
