package influx

import (
	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/grid"
	"github.com/feederd/feederd/internal/sample"
)

// Lines encodes everything one pipeline shard writes (it is what the
// pipeline calls its Encoder): the lines of device polls, keeping the line
// of a poll whose samples are split between calls, detection events,
// outages and reliability sums. One goroutine owns a Lines; the encoders
// it shares are immutable.
type Lines struct {
	polls  *Encoder
	events *EventEncoder
	st     PollState
}

// NewLines returns a shard's Lines over the encoders of one configuration.
func NewLines(polls *Encoder, events *EventEncoder) *Lines {
	return &Lines{polls: polls, events: events}
}

// AppendPolls is Encoder.Append with the shard's own PollState.
func (l *Lines) AppendPolls(dst []byte, samples []sample.Sample) ([]byte, int) {
	return l.polls.Append(dst, &l.st, samples)
}

// FlushPoll appends the line of a poll left open (its last sample never
// came), as Append would on the first sample of another poll.
func (l *Lines) FlushPoll(dst []byte) ([]byte, int) {
	if !l.st.open {
		return dst, 0
	}
	return l.polls.complete(dst, &l.st), 1
}

// AppendEvent is EventEncoder.Append.
func (l *Lines) AppendEvent(dst []byte, ev *detect.Event) []byte { return l.events.Append(dst, ev) }

// AppendOutage is the package's AppendOutage.
func (l *Lines) AppendOutage(dst []byte, o *grid.Outage) []byte { return AppendOutage(dst, o) }

// AppendReliability is the package's AppendReliability.
func (l *Lines) AppendReliability(dst []byte, feeder string, a grid.Accumulator, t int64) []byte {
	return AppendReliability(dst, feeder, a, t)
}
