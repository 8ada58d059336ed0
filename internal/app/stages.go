package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stages runs the daemon's long-running components, each on a goroutine of
// its own with a context of its own, and stops them in an order given in
// one place (Run's shutdown list), each step bounded by a deadline: a
// component stuck in a dial or a serial open cannot hold up the ones after
// it (the InfluxDB sink's last flush above all). A component that misses
// its deadline is logged and left behind; the process is about to exit.
type stages struct {
	log  *slog.Logger
	list []*stage
	done chan stageResult
	// failed is the first component that ended with an error, or on its
	// own before shutdown.
	failed error
}

type stage struct {
	name    string
	run     func(ctx context.Context) error
	ctx     context.Context
	cancel  context.CancelFunc
	running bool
}

type stageResult struct {
	name string
	err  error
}

func newStages(log *slog.Logger) *stages { return &stages{log: log} }

// add registers a component; parent is ctx for the one that must stop as
// soon as the daemon is asked to (the pollers), nil for the others, which
// stop when the shutdown reaches them.
func (s *stages) add(name string, parent context.Context, run func(ctx context.Context) error) {
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	s.list = append(s.list, &stage{name: name, run: run, ctx: ctx, cancel: cancel})
}

// start runs every component.
func (s *stages) start() {
	s.done = make(chan stageResult, len(s.list))
	for _, st := range s.list {
		st.running = true
		go func() { s.done <- stageResult{st.name, st.run(st.ctx)} }()
	}
}

// waitFirst blocks until ctx ends (a requested stop) or a component ends on
// its own, which is a failure of the daemon.
func (s *stages) waitFirst(ctx context.Context) {
	select {
	case <-ctx.Done():
		s.log.Info("shutting down")
	case r := <-s.done:
		s.ended(r)
		if ctx.Err() != nil {
			// The pollers end with ctx: this is the requested stop.
			s.log.Info("shutting down")
			return
		}
		if s.failed == nil {
			s.failed = fmt.Errorf("%s stopped unexpectedly", r.name)
		}
		s.log.Error("component stopped, shutting down", "component", r.name, "err", s.failed)
	}
}

// stop cancels the named components and waits for them, at most timeout.
// It reports whether they all ended.
func (s *stages) stop(timeout time.Duration, names ...string) bool {
	waiting := 0
	for _, st := range s.list {
		if slices.Contains(names, st.name) {
			st.cancel()
			if st.running {
				waiting++
			}
		}
	}
	if waiting == 0 {
		return true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for waiting > 0 {
		select {
		case r := <-s.done:
			if slices.Contains(names, r.name) {
				waiting--
			}
			s.ended(r)
		case <-t.C:
			var late []string
			for _, st := range s.list {
				if st.running && slices.Contains(names, st.name) {
					late = append(late, st.name)
				}
			}
			s.log.Error("components did not stop in time; going on with the shutdown without them",
				"components", late, "waited", timeout)
			if s.failed == nil {
				s.failed = fmt.Errorf("%v did not stop within %v", late, timeout)
			}
			return false
		}
	}
	return true
}

func (s *stages) ended(r stageResult) {
	for _, st := range s.list {
		if st.name == r.name {
			st.running = false
		}
	}
	if r.err != nil && !errors.Is(r.err, context.Canceled) && s.failed == nil {
		s.failed = fmt.Errorf("%s: %w", r.name, r.err)
		s.log.Error("component failed", "component", r.name, "err", r.err)
	}
}

// checkedRegisterer registers metrics and keeps the first error instead of
// panicking as MustRegister does (promauto calls MustRegister): a metric
// registered twice, by a caller's registry shared with another instance,
// is an error Run returns.
type checkedRegisterer struct {
	prometheus.Registerer
	err error
}

func (r *checkedRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil && r.err == nil {
			r.err = fmt.Errorf("register metrics: %w", err)
		}
	}
}
