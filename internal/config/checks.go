package config

import (
	"errors"
	"net/url"
	"time"
)

// Checks that several blocks share.

func (l *loader) positive(path string, d time.Duration) {
	if d <= 0 {
		l.s.add(path, "must be > 0, got %s", d)
	}
}

// minInterval and minBackoff are floors on poll intervals and reconnect
// delays: below them a link's goroutine would spin, burning a core on a
// typo such as "1ns" while achieving nothing a device could answer.
const (
	minInterval = 10 * time.Millisecond
	minBackoff  = 10 * time.Millisecond
)

// atLeast checks that d is positive and no shorter than floor.
func (l *loader) atLeast(path string, d, floor time.Duration) {
	switch {
	case d <= 0:
		l.s.add(path, "must be > 0, got %s", d)
	case d < floor:
		l.s.add(path, "must be at least %s, got %s", floor, d)
	}
}

func (l *loader) nonNegative(path string, d time.Duration) {
	if d < 0 {
		l.s.add(path, "must be >= 0, got %s", d)
	}
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
