package backoff

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func delays(b *Backoff, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = b.Next()
	}
	return out
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		name         string
		initial, max time.Duration
		rand         float64
		want         []time.Duration
	}{
		{"lower bound doubles up to the cap", ms(100), ms(1000), 0,
			[]time.Duration{ms(50), ms(100), ms(200), ms(400), ms(500), ms(500)}},
		{"upper bound", ms(100), ms(1000), 0.999999,
			[]time.Duration{ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)}},
		{"middle", ms(100), ms(1000), 0.5,
			[]time.Duration{ms(75), ms(150), ms(300), ms(600), ms(750), ms(750)}},
		{"zero initial means 500ms", 0, ms(1000), 0,
			[]time.Duration{ms(250), ms(500), ms(500)}},
		{"max below initial is raised to it", ms(300), ms(100), 0,
			[]time.Duration{ms(150), ms(150)}},
		{"out of range rand counts as 0", ms(100), ms(1000), 1.5,
			[]time.Duration{ms(50), ms(100)}},
		{"NaN rand counts as 0", ms(100), ms(1000), math.NaN(),
			[]time.Duration{ms(50), ms(100)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(tc.initial, tc.max, func() float64 { return tc.rand })
			got := delays(&b, len(tc.want))
			for i := range got {
				// the upper bound case rounds down by a few ns
				if d := tc.want[i] - got[i]; d < 0 || d > time.Microsecond {
					t.Errorf("delays %v, want %v", got, tc.want)
					break
				}
			}
		})
	}
}

func TestBackoffJitterBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	b := New(ms(100), ms(3000), rng.Float64)
	base := ms(100)
	seen := map[time.Duration]bool{}
	for i := range 2000 {
		if i%20 == 0 {
			b.Reset()
			base = ms(100)
		}
		d := b.Next()
		if d < base/2 || d >= base || d > ms(3000) {
			t.Fatalf("delay %d = %v, want in [%v, %v)", i, d, base/2, base)
		}
		seen[d] = true
		base = min(2*base, ms(3000))
	}
	if len(seen) < 1000 {
		t.Errorf("only %d distinct delays in 2000: no jitter?", len(seen))
	}
}

func TestBackoffReset(t *testing.T) {
	b := New(ms(100), ms(1000), func() float64 { return 0 })
	got := delays(&b, 3)
	b.Reset()
	got = append(got, delays(&b, 2)...)
	if want := []time.Duration{ms(50), ms(100), ms(200), ms(50), ms(100)}; !slices.Equal(got, want) {
		t.Errorf("delays %v, want %v", got, want)
	}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestBackoffDefaultRand(t *testing.T) {
	b := New(ms(100), ms(100), nil)
	for range 100 {
		if d := b.Next(); d < ms(50) || d >= ms(100) {
			t.Fatalf("delay %v, want in [50ms, 100ms)", d)
		}
	}
}
