package poll

import "time"

// schedule holds the poll deadlines of one link's devices. Deadline k of a
// device is first + k*interval, computed, never accumulated, so polls do not
// drift. The devices' first deadlines are spread over their interval by
// their position on the link (offset = i*interval/n), so a link with n
// devices of one interval polls one every interval/n.
//
// A link does not sleep until each deadline. A device's poll may start up
// to one step before its deadline, at the last point at or before it of a
// grid of that step counted from the poller's start, where the step is a
// tenth of the device's interval, at most maxStep. The link sleeps until the
// next such point, then polls back to back every device whose point it has
// reached. Every wake-up of an idle Go process costs far more CPU than a
// poll (the timer, the netpoller, futex wake-ups of idle threads, and
// sysmon, which polls every 20 µs for a while after the process wakes up):
// a link with 200 devices at 1 s, one due every 5 ms, would otherwise wake
// up 200 times a second, and now wakes up 10 times. The grids of steps that
// divide one another (10 ms, 100 ms) share their points, so slow devices
// join the wake-ups of fast ones, and links of one interval wake up
// together. The grid is fixed, so a device whose interval is a multiple of
// its step always starts at the same point before its deadline. An early
// poll is for its slot as any other: Seq and the missed count do not change,
// its lateness is 0; only its samples' Time is earlier.
//
// schedule is a pure function of the times it is given, so tests drive it
// with synthetic times.
type schedule struct {
	start time.Time
	slots []slot
}

// maxStep bounds the step of a device's grid, and so how early its poll may
// start.
const maxStep = 100 * time.Millisecond

type slot struct {
	first    time.Time
	interval time.Duration
	step     time.Duration
	// k is the slot the device's next poll is for.
	k int64
}

// newSchedule spreads the devices' first deadlines from start. With align,
// a device's deadlines are instead fixed to the wall clock: the instants
// whose Unix time minus the device's offset is a multiple of its interval,
// from the first at or after start. Two pollers with the same devices then
// share every deadline whenever they start, which is what stamping samples
// with their slot (poll.slot_time) needs to make an HA pair's writes equal.
func newSchedule(start time.Time, intervals []time.Duration, align bool) *schedule {
	s := &schedule{start: start, slots: make([]slot, len(intervals))}
	n := int64(len(intervals))
	for i, iv := range intervals {
		offset := time.Duration(int64(iv) * int64(i) / n)
		first := start.Add(offset)
		if align && iv > 0 {
			first = alignedAfter(start, iv, offset)
		}
		s.slots[i] = slot{
			first:    first,
			interval: iv,
			step:     min(iv/10, maxStep),
		}
	}
	return s
}

// alignedAfter returns the first instant at or after t whose Unix time in
// nanoseconds is offset plus a multiple of iv. It keeps t's monotonic
// reading, so the schedule still measures with the monotonic clock.
func alignedAfter(t time.Time, iv, offset time.Duration) time.Time {
	ns := t.UnixNano() - int64(offset)
	r := ns % int64(iv)
	if r < 0 {
		r += int64(iv)
	}
	if r == 0 {
		return t
	}
	return t.Add(iv - time.Duration(r))
}

func (s *slot) deadline(k int64) time.Time {
	return s.first.Add(time.Duration(k) * s.interval)
}

// index is the number of the last slot whose deadline is at or before t
// (-1 before the first).
func (s *slot) index(t time.Time) int64 {
	d := t.Sub(s.first)
	if d < 0 {
		return -1
	}
	return int64(d / s.interval)
}

// next returns the device whose poll is due first and its deadline; ties go
// to the device listed first.
func (s *schedule) next() (int, time.Time) {
	best := -1
	var at time.Time
	for i := range s.slots {
		d := s.slots[i].deadline(s.slots[i].k)
		if best < 0 || d.Before(at) {
			best, at = i, d
		}
	}
	return best, at
}

// pollAt returns when device i's poll for deadline due may start: the last
// point of the device's grid at or before due.
func (s *schedule) pollAt(i int, due time.Time) time.Time {
	d, step := due.Sub(s.start), s.slots[i].step
	if step <= 0 || d <= 0 {
		return due
	}
	return due.Add(-(d % step))
}

// begin is called when device i's poll starts at now. If the link was busy
// past the deadline after the due one as well, the poll is for the latest
// slot that has begun and the ones before it are missed. It returns the slot
// polled, how late the poll starts and how many slots were missed.
func (s *schedule) begin(i int, now time.Time) (k int64, late time.Duration, missed int64) {
	sl := &s.slots[i]
	if latest := sl.index(now); latest > sl.k {
		missed = latest - sl.k
		sl.k = latest
	}
	return sl.k, max(now.Sub(sl.deadline(sl.k)), 0), missed
}

// end is called when device i's poll ends at now. The next poll is for the
// following slot; when the poll overran that slot's deadline, the slots that
// began during the poll are missed and the next poll waits for the first
// deadline at or after now. It returns how many slots were missed.
func (s *schedule) end(i int, now time.Time) (missed int64) {
	sl := &s.slots[i]
	next := sl.k + 1
	if sl.deadline(next).Before(now) {
		// the first deadline at or after now
		first := sl.index(now)
		if !sl.deadline(first).Equal(now) {
			first++
		}
		missed = first - next
		next = first
	}
	sl.k = next
	return missed
}
