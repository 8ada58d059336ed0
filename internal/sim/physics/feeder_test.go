package physics

import (
	"math"
	"testing"
	"time"
)

func TestLoadFactor(t *testing.T) {
	tests := []struct {
		clock string
		want  float64
	}{
		{"00:00", 0.55}, {"04:00", 0.45}, {"12:00", 0.85}, {"18:00", 1.00}, {"18:30", 0.99}, {"23:30", 0.585},
	}
	for _, tt := range tests {
		tm, err := time.Parse("15:04", tt.clock)
		if err != nil {
			t.Fatal(err)
		}
		if got := loadFactor(tm); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("loadFactor(%s) = %v, want %v", tt.clock, got, tt.want)
		}
	}
}
