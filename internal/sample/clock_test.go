package sample

import (
	"testing"
	"time"
)

// fakeTime is a wall clock that an operator can step and a monotonic clock
// that only moves forward with Advance.
type fakeTime struct {
	wall time.Time
	mono time.Duration
}

func (f *fakeTime) Advance(d time.Duration) { f.wall = f.wall.Add(d); f.mono += d }
func (f *fakeTime) Step(d time.Duration)    { f.wall = f.wall.Add(d) }

func newFake() (*fakeTime, *Clock) {
	f := &fakeTime{wall: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), mono: 5 * time.Hour}
	return f, NewClockFrom(func() time.Time { return f.wall }, func() time.Duration { return f.mono })
}

func TestClockFollowsMonotonicThroughSteps(t *testing.T) {
	for _, step := range []time.Duration{30 * time.Second, -30 * time.Second} {
		t.Run(step.String(), func(t *testing.T) {
			f, c := newFake()
			start := c.Now()
			if start != f.wall.UnixNano() {
				t.Fatalf("anchored at %d, wall %d", start, f.wall.UnixNano())
			}
			prev := start
			for i := range 120 {
				f.Advance(time.Second)
				if i == 10 {
					f.Step(step)
				}
				if got := c.Sync(); i > 10 && (got-step).Abs() > time.Duration(i)*time.Millisecond {
					t.Fatalf("second %d: Sync says %v left, want about %v", i, got, step)
				}
				now := c.Now()
				d := time.Duration(now - prev)
				// Every second of sample time is one second, give or take
				// the slew: no jump, never backwards.
				if d < time.Second-time.Millisecond || d > time.Second+time.Millisecond {
					t.Fatalf("second %d: sample clock moved %v", i, d)
				}
				prev = now
			}
			// After 109 s of slewing, 109 × 500 µs of the step are absorbed.
			want := step - step.Abs()/step*time.Duration(109*MaxSlew*float64(time.Second))
			if off := c.Offset(); (off - want).Abs() > time.Millisecond {
				t.Fatalf("offset %v, want %v", off, want)
			}
		})
	}
}

func TestClockMeetsWallClockAgain(t *testing.T) {
	f, c := newFake()
	f.Step(-2 * time.Second)
	c.Sync()
	// 2 s at 500 µs/s: 4000 s.
	f.Advance(3999 * time.Second)
	if off := c.Offset(); off >= 0 || off < -time.Millisecond {
		t.Fatalf("offset after 3999 s = %v, want within 1 ms before 0", off)
	}
	f.Advance(2 * time.Second)
	if off := c.Offset(); off != 0 {
		t.Fatalf("offset after 4001 s = %v, want 0", off)
	}
	if c.Now() != f.wall.UnixNano() {
		t.Fatalf("sample clock %d, wall %d", c.Now(), f.wall.UnixNano())
	}
	f.Advance(time.Hour)
	if c.Now() != f.wall.UnixNano() {
		t.Fatal("sample clock left the wall clock without a step")
	}
}

func TestSystemClock(t *testing.T) {
	c := NewClock()
	a := c.Now()
	if d := time.Duration(a - time.Now().UnixNano()).Abs(); d > time.Second {
		t.Fatalf("sample clock %v away from the wall clock", d)
	}
	if b := c.Now(); b < a {
		t.Fatalf("went backwards: %d then %d", a, b)
	}
}
