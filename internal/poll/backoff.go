package poll

import "time"

// backoff spaces the reopen attempts of a failed link: the base delay starts
// at initial and doubles with every failed attempt up to max; the delay
// waited is drawn uniformly from [base/2, base) ("equal jitter"), so it never
// exceeds max and links that failed together do not retry together.
type backoff struct {
	initial, max time.Duration
	rand         func() float64
	attempt      int
}

func newBackoff(initial, max time.Duration, rand func() float64) backoff {
	if initial <= 0 {
		initial = 500 * time.Millisecond
	}
	if max < initial {
		max = initial
	}
	return backoff{initial: initial, max: max, rand: rand}
}

// next returns the delay before the next attempt and counts the attempt.
func (b *backoff) next() time.Duration {
	base := b.initial
	for i := 0; i < b.attempt && base < b.max; i++ {
		base *= 2
	}
	if base >= b.max {
		base = b.max
	} else {
		b.attempt++
	}
	r := b.rand()
	if !(r >= 0 && r < 1) { // also catches NaN
		r = 0
	}
	half := base / 2
	return half + time.Duration(r*float64(base-half))
}

// reset starts over from the initial delay, once the link works again.
func (b *backoff) reset() { b.attempt = 0 }
