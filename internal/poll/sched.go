package poll

import "time"

// schedule holds the poll deadlines of one link's devices. Deadline k of a
// device is first + k*interval, computed, never accumulated, so polls do not
// drift. The devices' first deadlines are spread over their interval by
// their position on the link (offset = i*interval/n), so a link with n
// devices of one interval polls one every interval/n.
//
// schedule is a pure function of the times it is given, so tests drive it
// with synthetic times.
type schedule struct {
	slots []slot
}

type slot struct {
	first    time.Time
	interval time.Duration
	// k is the slot the device's next poll is for.
	k int64
}

func newSchedule(start time.Time, intervals []time.Duration) *schedule {
	s := &schedule{slots: make([]slot, len(intervals))}
	n := int64(len(intervals))
	for i, iv := range intervals {
		s.slots[i] = slot{first: start.Add(time.Duration(int64(iv) * int64(i) / n)), interval: iv}
	}
	return s
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
