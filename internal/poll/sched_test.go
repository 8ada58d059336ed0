package poll

import (
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestScheduleSpreadsFirstPolls(t *testing.T) {
	for _, tc := range []struct {
		name      string
		intervals []time.Duration
		want      []time.Duration // first deadlines after start
	}{
		{"one device starts at once", []time.Duration{ms(1000)}, []time.Duration{0}},
		{"four devices, one interval", []time.Duration{ms(1000), ms(1000), ms(1000), ms(1000)}, []time.Duration{0, ms(250), ms(500), ms(750)}},
		{"mixed intervals spread over their own", []time.Duration{ms(1000), ms(300), ms(90)}, []time.Duration{0, ms(100), ms(60)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSchedule(t0, tc.intervals, false)
			for i, w := range tc.want {
				if got := s.slots[i].deadline(0).Sub(t0); got != w {
					t.Errorf("device %d first deadline +%v, want +%v", i, got, w)
				}
			}
		})
	}
}

func TestScheduleOrder(t *testing.T) {
	// Two devices of 100 ms and one of 300 ms, each polled at its deadline
	// and taking no time: the link serves them in deadline order, the first
	// listed first on a tie.
	s := newSchedule(t0, []time.Duration{ms(100), ms(100), ms(300)}, false)
	type poll struct {
		dev int
		at  time.Duration
	}
	var got []poll
	for range 8 {
		i, at := s.next()
		s.begin(i, at)
		s.end(i, at)
		got = append(got, poll{i, at.Sub(t0)})
	}
	third := ms(100) / 3 // device 1's offset: 1*100ms/3
	want := []poll{{0, 0}, {1, third}, {0, ms(100)}, {1, ms(100) + third}, {0, ms(200)}, {2, ms(200)}, {1, ms(200) + third}, {0, ms(300)}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k := range want {
		if got[k] != want[k] {
			t.Errorf("poll %d: got device %d at +%v, want device %d at +%v", k, got[k].dev, got[k].at, want[k].dev, want[k].at)
		}
	}
}

func TestScheduleDoesNotDrift(t *testing.T) {
	// Polls start up to 9 ms late and take up to 80 ms: deadline k stays
	// exactly start + k*interval, and none is missed.
	rng := rand.New(rand.NewPCG(1, 2))
	s := newSchedule(t0, []time.Duration{ms(100)}, false)
	const n = 10000
	for k := range int64(n) {
		i, due := s.next()
		if want := t0.Add(time.Duration(k) * ms(100)); !due.Equal(want) {
			t.Fatalf("deadline %d = %v, want %v", k, due, want)
		}
		begin := due.Add(time.Duration(rng.Int64N(int64(ms(9)))))
		slot, late, missed := s.begin(i, begin)
		if slot != k || missed != 0 || late != begin.Sub(due) {
			t.Fatalf("begin %d: slot %d, late %v, missed %d", k, slot, late, missed)
		}
		if missed := s.end(i, begin.Add(time.Duration(rng.Int64N(int64(ms(80)))))); missed != 0 {
			t.Fatalf("end %d: missed %d", k, missed)
		}
	}
	if _, due := s.next(); !due.Equal(t0.Add(n * ms(100))) {
		t.Errorf("after %d polls next deadline is %v, want %v", n, due, t0.Add(n*ms(100)))
	}
}

func TestScheduleSkipsMissedSlots(t *testing.T) {
	for _, tc := range []struct {
		name          string
		begin, end    time.Duration // since start; interval 100 ms
		slot          int64
		late          time.Duration
		missedAtBegin int64
		missedAtEnd   int64
		next          time.Duration
	}{
		{"on time", 0, ms(30), 0, 0, 0, 0, ms(100)},
		{"ends on the next deadline", 0, ms(100), 0, 0, 0, 0, ms(100)},
		{"ends just after the next deadline", 0, ms(101), 0, 0, 0, 1, ms(200)},
		{"overruns two deadlines", 0, ms(250), 0, 0, 0, 2, ms(300)},
		{"ends exactly on a later deadline", 0, ms(200), 0, 0, 0, 1, ms(200)},
		{"starts late", ms(40), ms(45), 0, ms(40), 0, 0, ms(100)},
		{"starts after the following deadline", ms(350), ms(360), 3, ms(50), 3, 0, ms(400)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSchedule(t0, []time.Duration{ms(100)}, false)
			slot, late, missed := s.begin(0, t0.Add(tc.begin))
			if slot != tc.slot || late != tc.late || missed != tc.missedAtBegin {
				t.Errorf("begin: slot %d late %v missed %d, want %d %v %d", slot, late, missed, tc.slot, tc.late, tc.missedAtBegin)
			}
			if missed := s.end(0, t0.Add(tc.end)); missed != tc.missedAtEnd {
				t.Errorf("end: missed %d, want %d", missed, tc.missedAtEnd)
			}
			if _, due := s.next(); due.Sub(t0) != tc.next {
				t.Errorf("next deadline +%v, want +%v", due.Sub(t0), tc.next)
			}
		})
	}
}

func TestSchedulePollAt(t *testing.T) {
	// Steps: 100 ms for 1 s, 10 ms for 100 ms, 100 ms (the cap) for 5 s,
	// 2 ms for 20 ms; grids count from t0.
	s := newSchedule(t0, []time.Duration{ms(1000), ms(100), ms(5000), ms(20)}, false)
	for _, tc := range []struct {
		dev     int
		due, at time.Duration // since t0
		name    string
	}{
		{0, 0, 0, "the start is on every grid"},
		{0, ms(5), 0, "5 ms after a point"},
		{0, ms(99), 0, "just before the next point"},
		{0, ms(100), ms(100), "on a point"},
		{0, ms(1234), ms(1200), "a later slot"},
		{1, ms(5), 0, "10 ms grid"},
		{1, ms(15), ms(10), "10 ms grid, second point"},
		{2, ms(4250), ms(4200), "a long interval is capped at 100 ms"},
		{3, ms(3), ms(2), "2 ms grid"},
		{0, -ms(30), -ms(30), "before the start: as due"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.pollAt(tc.dev, t0.Add(tc.due)).Sub(t0); got != tc.at {
				t.Errorf("device %d due +%v: poll at +%v, want +%v", tc.dev, tc.due, got, tc.at)
			}
		})
	}
}

func TestScheduleWakesOnItsGrid(t *testing.T) {
	// A link of 200 devices at 1 s, one due every 5 ms, run as link.run
	// does with polls of 150 µs: it wakes up at the 10 points of its 100 ms
	// grid per second, polls 20 devices back to back at each, never late,
	// missing nothing, every device at the same point of every second.
	intervals := make([]time.Duration, 200)
	for i := range intervals {
		intervals[i] = ms(1000)
	}
	s := newSchedule(t0, intervals, false)
	now := t0
	wakes := map[time.Duration]int{}
	startOf := make([]time.Duration, len(intervals)) // within the second
	const seconds = 5
	for n := 0; n < seconds*len(intervals); n++ {
		i, due := s.next()
		if at := s.pollAt(i, due); at.After(now) {
			now = at // sleep
			wakes[now.Sub(t0)]++
		}
		k, late, missed := s.begin(i, now)
		if late != 0 || missed != 0 || k != int64(n/len(intervals)) {
			t.Fatalf("poll %d of device %d at +%v: slot %d, late %v, missed %d", n, i, now.Sub(t0), k, late, missed)
		}
		if early := due.Sub(now); early < 0 || early >= ms(100) {
			t.Fatalf("device %d polled %v before its deadline, want 0..100ms", i, early)
		}
		within := now.Sub(t0) % ms(1000)
		if k > 0 && within != startOf[i] {
			t.Fatalf("device %d started at +%v of second %d, +%v before", i, within, k, startOf[i])
		}
		startOf[i] = within
		now = now.Add(150 * time.Microsecond)
		if missed := s.end(i, now); missed != 0 {
			t.Fatalf("device %d: missed %d at end", i, missed)
		}
	}
	// The first 20 polls need no wake-up: they are due at the start.
	if len(wakes) != seconds*10-1 {
		t.Errorf("woke up %d times in %d s, want %d", len(wakes), seconds, seconds*10-1)
	}
	for at := range wakes {
		if at%ms(100) != 0 {
			t.Errorf("woke up at +%v, off the 100 ms grid", at)
		}
	}
}

// TestAlignedScheduleIsSharedByReplicas: with align, the deadlines are the
// same for two pollers started at different times (an HA pair), they are
// Unix-time multiples of the interval plus the device's offset, and the
// first is not before start.
func TestAlignedScheduleIsSharedByReplicas(t *testing.T) {
	intervals := []time.Duration{ms(1000), ms(1000), ms(1000), ms(1000), ms(300)}
	a0 := t0.Add(ms(123))                 // replica A starts 123 ms after a whole second
	b0 := t0.Add(7*time.Second + ms(901)) // B almost 8 s later
	a, b := newSchedule(a0, intervals, true), newSchedule(b0, intervals, true)
	offsets := []time.Duration{0, ms(200), ms(400), ms(600), ms(240)} // i*interval/n, n = 5
	for i, iv := range intervals {
		fa, fb := a.slots[i].deadline(0), b.slots[i].deadline(0)
		if fa.Before(a0) || fa.Sub(a0) >= iv || fb.Before(b0) || fb.Sub(b0) >= iv {
			t.Errorf("device %d: first deadlines %v (start %v), %v (start %v): want within one interval after the start",
				i, fa.Sub(t0), a0.Sub(t0), fb.Sub(t0), b0.Sub(t0))
		}
		if r := (fa.UnixNano() - int64(offsets[i])) % int64(iv); r != 0 {
			t.Errorf("device %d: first deadline %v is %v past a multiple of %v plus offset %v", i, fa.Sub(t0), time.Duration(r), iv, offsets[i])
		}
		// B's deadlines are A's, from the one at or after B's start.
		k := b.slots[i].deadline(0).Sub(fa) / iv
		for j := int64(0); j < 5; j++ {
			if got, want := b.slots[i].deadline(j), a.slots[i].deadline(j+int64(k)); !got.Equal(want) {
				t.Errorf("device %d slot %d: B %v, A %v", i, j, got.Sub(t0), want.Sub(t0))
			}
		}
	}
	// Without align the same starts give different deadlines.
	if newSchedule(a0, intervals, false).slots[0].deadline(0).Sub(newSchedule(b0, intervals, false).slots[0].deadline(0))%time.Second == 0 {
		t.Errorf("unaligned schedules of starts %v and %v share deadlines; the test cannot tell", a0, b0)
	}
}
