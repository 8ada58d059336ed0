package poll

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Log lines about one device, and the Modbus library's lines about one
// link, pass a token bucket: logBurst lines at once, then one per
// logEvery. A line that passes after others were dropped carries
// "suppressed" with how many. So a device that fails every request writes a
// few lines a second however short its interval and whatever the level,
// and a line about its recovery still gets through.
const (
	logBurst = 20
	logEvery = time.Second
)

// limitHandler is a slog.Handler that passes records through a token
// bucket shared by every handler derived from it (WithAttrs, WithGroup).
type limitHandler struct {
	next   slog.Handler
	bucket *logBucket
}

type logBucket struct {
	mu         sync.Mutex
	now        func() time.Time
	tokens     float64
	last       time.Time
	suppressed int
}

// limitLogger returns a logger writing through l's handler at most as the
// bucket allows.
func limitLogger(l *slog.Logger, now func() time.Time) *slog.Logger {
	return slog.New(&limitHandler{next: l.Handler(), bucket: &logBucket{now: now, tokens: logBurst}})
}

// take reports whether a line may pass and how many were dropped before it.
func (b *logBucket) take() (bool, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if !b.last.IsZero() {
		b.tokens = min(logBurst, b.tokens+float64(now.Sub(b.last))/float64(logEvery))
	}
	b.last = now
	if b.tokens < 1 {
		b.suppressed++
		return false, 0
	}
	b.tokens--
	n := b.suppressed
	b.suppressed = 0
	return true, n
}

func (h *limitHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h *limitHandler) Handle(ctx context.Context, r slog.Record) error {
	ok, dropped := h.bucket.take()
	if !ok {
		return nil
	}
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", dropped))
	}
	return h.next.Handle(ctx, r)
}

func (h *limitHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &limitHandler{next: h.next.WithAttrs(attrs), bucket: h.bucket}
}

func (h *limitHandler) WithGroup(name string) slog.Handler {
	return &limitHandler{next: h.next.WithGroup(name), bucket: h.bucket}
}
