package config

import "time"

// The poll block: defaults for every link and device.

type rawPoll struct {
	Interval       *time.Duration `yaml:"interval"`
	Timeout        *time.Duration `yaml:"timeout"`
	BackoffInitial *time.Duration `yaml:"backoff_initial"`
	BackoffMax     *time.Duration `yaml:"backoff_max"`
	MaxGap         *int           `yaml:"max_gap"`
	StaleAfter     *int           `yaml:"stale_after"`
	SlotTime       *bool          `yaml:"slot_time"`
}

func (l *loader) poll(r *rawPoll) PollDefaults {
	p := l.d.Poll
	if r.Interval != nil {
		p.Interval = *r.Interval
		l.atLeast("poll.interval", p.Interval, minInterval)
	}
	if r.Timeout != nil {
		p.Timeout = *r.Timeout
		l.positive("poll.timeout", p.Timeout)
	}
	if p.Interval > 0 && p.Timeout > p.Interval {
		l.s.add("poll.timeout", "timeout %s must not exceed interval %s", p.Timeout, p.Interval)
	}
	if r.BackoffInitial != nil {
		p.BackoffInitial = *r.BackoffInitial
		l.atLeast("poll.backoff_initial", p.BackoffInitial, minBackoff)
	}
	if r.BackoffMax != nil {
		p.BackoffMax = *r.BackoffMax
	}
	if p.BackoffMax < p.BackoffInitial {
		l.s.add("poll.backoff_max", "backoff_max %s is shorter than backoff_initial %s", p.BackoffMax, p.BackoffInitial)
	}
	if r.MaxGap != nil {
		if g := *r.MaxGap; g < 0 || g > 124 {
			l.s.add("poll.max_gap", "max_gap %d out of range 0..124", g)
		} else {
			p.MaxGap = uint16(g)
		}
	}
	if r.SlotTime != nil {
		p.SlotTime = *r.SlotTime
	}
	if r.StaleAfter != nil {
		p.StaleAfter = *r.StaleAfter
		if p.StaleAfter < 1 {
			l.s.add("poll.stale_after", "stale_after %d must be at least 1", p.StaleAfter)
		}
	}
	return p
}
