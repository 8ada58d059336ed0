package sample

import (
	"sync/atomic"
	"time"
)

// MaxSlew is how fast a Clock follows a step of the wall clock: 500 µs per
// second (500 ppm), the most the kernel's adjtime slews. Durations measured
// on sample time are then off by at most 0.05 % while a step is absorbed.
const MaxSlew = 500e-6

// Clock is the time base of samples and of time-based detection: Unix
// nanoseconds read from the monotonic clock and anchored to the wall clock
// when the Clock was made. A step of the wall clock (NTP stepping, an
// operator's date, a VM resumed) never moves it backwards or makes it jump:
// Sync slews it towards the wall clock at MaxSlew, so after a step of S the
// sample times meet the wall clock again after S/MaxSlew (30 s: about 17 h).
// Offset says how far apart they are.
//
// Now is safe for concurrent use and takes no lock; Sync is called by one
// owner, about once a second.
type Clock struct {
	wall func() time.Time
	mono func() time.Duration
	// anchor is the wall clock's Unix ns at mono() == 0.
	anchor int64
	slew   atomic.Pointer[slew]
}

// slew is a correction in progress: the offset is off0 at mono m0 and moves
// towards target at MaxSlew.
type slew struct {
	m0           time.Duration
	off0, target int64
}

// NewClock returns a Clock on the system's wall and monotonic clocks.
func NewClock() *Clock {
	start := time.Now()
	return NewClockFrom(time.Now, func() time.Duration { return time.Since(start) })
}

// NewClockFrom returns a Clock on the given wall clock and monotonic
// source (elapsed time that never goes backwards); tests use it to step the
// wall clock.
func NewClockFrom(wall func() time.Time, mono func() time.Duration) *Clock {
	c := &Clock{wall: wall, mono: mono}
	m := mono()
	c.anchor = wall().UnixNano() - int64(m)
	c.slew.Store(&slew{m0: m})
	return c
}

// Now returns the sample time now, in Unix ns.
func (c *Clock) Now() int64 {
	m := c.mono()
	return c.anchor + int64(m) + c.slew.Load().offset(m)
}

func (s *slew) offset(m time.Duration) int64 {
	d := s.target - s.off0
	if d == 0 || m <= s.m0 {
		return s.off0
	}
	step := int64(float64(m-s.m0) * MaxSlew)
	switch {
	case d > 0 && step < d:
		return s.off0 + step
	case d < 0 && step < -d:
		return s.off0 - step
	}
	return s.target
}

// Sync reads the wall clock and sets the slew target to it. It returns the
// wall clock minus the sample clock before the call: the step still to be
// absorbed.
func (c *Clock) Sync() time.Duration {
	m := c.mono()
	off := c.slew.Load().offset(m)
	target := c.wall().UnixNano() - c.anchor - int64(m)
	c.slew.Store(&slew{m0: m, off0: off, target: target})
	return time.Duration(target - off)
}

// Offset returns the wall clock minus the sample clock now.
func (c *Clock) Offset() time.Duration {
	m := c.mono()
	return time.Duration(c.wall().UnixNano() - c.anchor - int64(m) - c.slew.Load().offset(m))
}
