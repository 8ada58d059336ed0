package poll

import (
	"context"
	"fmt"
	"time"
)

// A link's connection attempt may outlive the connect that started it.
// The Modbus library dials tcp:// and rtuovertcp:// links with a fixed 5 s
// inside Open, which holds the client's lock, and Open cannot be
// interrupted. So the link runs Open in a goroutine of its own, one attempt
// at a time, and waits for it at most the link's timeout. An attempt that
// has not ended by then fails the connect (the link's down error, backoff
// and metrics as for any failed open) and goes on; the link's next connect
// collects it first: a connection it made is adopted, with no second dial
// (a device with one connection slot sees one connection), a failure leads
// to a new attempt, and one still running is waited for again at most the
// timeout. pending is nil when no attempt runs and never set while the link
// is open. Closing the link waits for a pending attempt (at most the
// library's 5 s) and closes the connection it made.

// dial opens the link's client, or collects the attempt a previous connect
// left running, within the link's timeout from now. On tcp+tls:// links a
// new attempt starts only after preflight succeeded within that timeout;
// the wait for Open gets what preflight left of it.
func (l *link) dial(ctx context.Context) error {
	deadline := time.Now().Add(l.timeout)
	if l.pending != nil {
		select {
		case err := <-l.pending:
			l.pending = nil
			if err == nil {
				return nil
			}
			// It failed after the last connect gave up on it: dial anew.
		default:
		}
	}
	if l.pending == nil {
		if err := preflight(ctx, l.cfg.URL, l.tlsConf, l.timeout); err != nil {
			return err
		}
		done := make(chan error, 1) // the attempt never waits for its reader
		c := l.client
		go func() { done <- c.Open() }()
		l.pending = done
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case err := <-l.pending:
		l.pending = nil
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("no connection within %s", l.timeout)
	}
}

// collect waits for a pending attempt to end, and marks the link open if
// it connected, so that close closes the connection that arrived late.
func (l *link) collect() {
	if l.pending == nil {
		return
	}
	if err := <-l.pending; err == nil {
		l.open = true
	}
	l.pending = nil
}
