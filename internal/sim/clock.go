package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Clock is the time source of a run. Simulated time follows it, scaled by
// the time scale and stopped while paused (the Sim does that arithmetic);
// the physics steps on a fixed grid of simulated time, so how often the
// clock wakes the simulation changes nothing in the values.
type Clock interface {
	// Now is the clock's current time.
	Now() time.Time
	// Every calls fn with the clock's time about every d until ctx ends,
	// one call at a time, and returns at once. The returned channel is
	// closed when no call runs or will start any more.
	Every(ctx context.Context, d time.Duration, fn func(now time.Time)) <-chan struct{}
}

// RealClock is the wall clock.
type RealClock struct{}

// Now is time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// Every calls fn from a ticker goroutine.
func (RealClock) Every(ctx context.Context, d time.Duration, fn func(time.Time)) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				fn(now)
			}
		}
	}()
	return done
}

// ManualClock is a clock that only moves when told to: tests drive a run
// with it and never sleep.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
	// call serialises the callbacks, and their removal with them.
	call sync.Mutex
	subs []*manualSub
}

type manualSub struct{ fn func(time.Time) }

// NewManualClock returns a clock standing at start.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{now: start} }

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d and calls every Every callback with the new
// time, in the order they were registered; it returns after they have
// returned, so a test sees the simulation at the new time.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	c.mu.Unlock()
	c.call.Lock()
	defer c.call.Unlock()
	for _, s := range c.subs {
		s.fn(now)
	}
}

// Every registers fn for Advance until ctx ends. d is ignored: the clock
// calls back on every Advance, however small.
func (c *ManualClock) Every(ctx context.Context, _ time.Duration, fn func(time.Time)) <-chan struct{} {
	c.call.Lock()
	s := &manualSub{fn: fn}
	c.subs = append(c.subs, s)
	c.call.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		c.call.Lock()
		c.subs = slices.DeleteFunc(c.subs, func(x *manualSub) bool { return x == s })
		c.call.Unlock()
	}()
	return done
}

// attach makes clock drive the simulation from now on: simulated time is
// the simulation's current time plus scale × the clock time since now.
func (s *Sim) attach(c Clock, scale float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock, s.scale = c, scale
	s.simBase, s.clockBase = s.w.Now(), c.Now()
}

// simTime is the simulated time that clock time now stands for.
func (s *Sim) simTime(now time.Time) time.Time {
	if s.paused {
		return s.simBase
	}
	return s.simBase.Add(time.Duration(float64(now.Sub(s.clockBase)) * s.scale))
}

// sync advances the simulation to the clock's present (nothing without a
// clock).
func (s *Sim) sync() error {
	if s.clock == nil {
		return nil
	}
	return s.w.AdvanceTo(s.simTime(s.clock.Now()))
}

// rebase restarts the mapping at the present, so that a change of pause or
// scale applies from now on.
func (s *Sim) rebase() error {
	if s.clock == nil {
		return errors.New("the simulation has no clock")
	}
	now := s.clock.Now()
	t := s.simTime(now)
	if err := s.w.AdvanceTo(t); err != nil {
		return err
	}
	s.simBase, s.clockBase = t, now
	return nil
}

// Pause stops simulated time: values stay as they are and timers wait.
func (s *Sim) Pause() (ClockState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.rebase(); err != nil {
		return ClockState{}, err
	}
	s.paused = true
	return s.clockState(), nil
}

// Resume lets simulated time run on from where Pause stopped it.
func (s *Sim) Resume() (ClockState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.rebase(); err != nil {
		return ClockState{}, err
	}
	s.paused = false
	return s.clockState(), nil
}

// SetTimeScale changes the simulated seconds per clock second from now on.
func (s *Sim) SetTimeScale(scale float64) error {
	if !(scale > 0 && scale <= maxTimeScale) {
		return fmt.Errorf("time scale %g is outside (0, %d]", scale, maxTimeScale)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.rebase(); err != nil {
		return err
	}
	s.scale = scale
	return nil
}

// ClockState is the simulation's time, as GET /api/clock shows it.
type ClockState struct {
	// Time is the simulated time reached; Elapsed is since the start.
	Time      time.Time `json:"time"`
	Elapsed   Duration  `json:"elapsed"`
	TimeScale float64   `json:"time_scale"`
	Paused    bool      `json:"paused"`
	Tick      Duration  `json:"tick"`
}

// Clock brings the simulation to the present and returns its time.
func (s *Sim) Clock() (ClockState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sync(); err != nil {
		return ClockState{}, err
	}
	return s.clockState(), nil
}

func (s *Sim) clockState() ClockState {
	now := s.w.Now()
	return ClockState{Time: now, Elapsed: Duration(now.Sub(s.w.Start())), TimeScale: s.scale, Paused: s.paused, Tick: Duration(s.w.Tick())}
}
