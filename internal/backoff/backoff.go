// Package backoff spaces the retries of everything that retries in feederd:
// a link reopening, the InfluxDB sink rewriting a batch, the alert
// dispatcher resending to a receiver. One rule for all three: the base delay
// starts at initial and doubles with every failed attempt up to max; the
// delay waited is drawn uniformly from [base/2, base) ("equal jitter"), so it
// never exceeds max and clients that failed together do not retry together.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff is the state of one retrying client; not safe for concurrent use.
type Backoff struct {
	initial, max time.Duration
	rand         func() float64
	attempt      int
}

// New returns a Backoff from initial (500 ms when not positive) to max
// (raised to initial when below it). rand draws the jitter in [0, 1); nil
// uses math/rand/v2.
func New(initial, max time.Duration, rand func() float64) Backoff {
	if initial <= 0 {
		initial = 500 * time.Millisecond
	}
	if max < initial {
		max = initial
	}
	if rand == nil {
		rand = defaultRand
	}
	return Backoff{initial: initial, max: max, rand: rand}
}

var defaultRand = rand.Float64

// Next returns the delay before the next attempt and counts the attempt.
func (b *Backoff) Next() time.Duration {
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

// Reset starts over from the initial delay, once the client works again.
func (b *Backoff) Reset() { b.attempt = 0 }
