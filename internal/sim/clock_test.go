package sim

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestManualClock(t *testing.T) {
	c := NewManualClock(t0)
	c.Advance(time.Second) // nobody listens yet
	if got := c.Now(); !got.Equal(t0.Add(time.Second)) {
		t.Fatalf("Now = %v, want %v", got, t0.Add(time.Second))
	}
	var calls []string
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	done1 := c.Every(ctx1, time.Hour, func(now time.Time) { calls = append(calls, "a "+now.Sub(t0).String()) })
	done2 := c.Every(ctx2, time.Hour, func(now time.Time) { calls = append(calls, "b "+now.Sub(t0).String()) })
	c.Advance(250 * time.Millisecond)
	cancel1()
	<-done1
	c.Advance(2 * time.Second)
	cancel2()
	<-done2
	c.Advance(time.Second)
	want := []string{"a 1.25s", "b 1.25s", "b 3.25s"}
	if !slices.Equal(calls, want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
}

func TestRealClockEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ticks := make(chan time.Time, 10)
	done := RealClock{}.Every(ctx, 10*time.Millisecond, func(now time.Time) {
		select {
		case ticks <- now:
		default:
		}
	})
	var prev time.Time
	for range 2 {
		select {
		case now := <-ticks:
			if !now.After(prev) {
				t.Fatalf("tick %v not after %v", now, prev)
			}
			prev = now
		case <-time.After(5 * time.Second):
			t.Fatal("no tick in 5s")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Every did not end after cancel")
	}
}

// TestTimeScale runs the simulation at ten simulated seconds per clock
// second, pauses and resumes it.
func TestTimeScale(t *testing.T) {
	s := newFeederSim(t, "")
	c := NewManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s.attach(c, 10)
	step := func(d time.Duration) time.Duration {
		t.Helper()
		c.Advance(d)
		cs, err := s.Clock()
		if err != nil {
			t.Fatal(err)
		}
		return cs.Elapsed.D()
	}
	if el := step(1500 * time.Millisecond); el != 15*time.Second {
		t.Fatalf("elapsed %s after 1.5s at scale 10, want 15s", el)
	}
	if _, err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	if el := step(time.Hour); el != 15*time.Second {
		t.Fatalf("elapsed %s after an hour paused, want 15s", el)
	}
	if _, err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTimeScale(2); err != nil {
		t.Fatal(err)
	}
	if el := step(time.Second); el != 17*time.Second {
		t.Fatalf("elapsed %s after 1s more at scale 2, want 17s", el)
	}
	if err := s.SetTimeScale(0); err == nil || err.Error() != "time scale 0 is outside (0, 1000]" {
		t.Fatalf("SetTimeScale(0) = %v", err)
	}
	// The physics stepped on its own grid: 17 steps after the first.
	if got := s.w.Next().Sub(t0); got != 18*time.Second {
		t.Fatalf("next step at %s, want 18s", got)
	}
}
