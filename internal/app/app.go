// Package app is feederd's composition root: it loads the configuration,
// builds every component with its dependencies, runs them as one group and
// tears them down in order.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/feederd/feederd/internal/alert"
	"github.com/feederd/feederd/internal/api"
	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/grid"
	"github.com/feederd/feederd/internal/influx"
	"github.com/feederd/feederd/internal/pipeline"
	"github.com/feederd/feederd/internal/poll"
	"github.com/feederd/feederd/internal/ring"
	"github.com/feederd/feederd/internal/sample"
)

// Options are everything Run needs; main fills them from flags and the
// environment.
type Options struct {
	// ConfigPath is the YAML file to load.
	ConfigPath string
	// Getenv resolves token_env; main passes os.Getenv.
	Getenv func(string) string
	Logger *slog.Logger
	// Registry receives every metric; /metrics serves it.
	Registry *prometheus.Registry
	// Listen overrides http.listen from the file when not empty.
	Listen string
	// ShutdownTimeout bounds the InfluxDB sink's last flush and the HTTP
	// server's shutdown, and each stop step. The pollers stop within their
	// links' timeouts, or up to the Modbus library's 5 s dial when a link's
	// connect attempt is still pending (poll's dial.go); the poll step's
	// deadline bounds both.
	ShutdownTimeout time.Duration
	// OnListen, when set, is called with the HTTP address once it is bound.
	OnListen func(addr string)
	// Version is reported in feederd_build_info.
	Version string
	// Pprof serves /debug/pprof/ on the HTTP listener.
	Pprof bool
	// DataDir holds what feederd keeps across restarts (detection's events
	// in progress, detect-state.json, and the InfluxDB spool in spool/).
	// Empty: nothing is kept.
	DataDir string
	// Hurry, when closed during shutdown, makes the InfluxDB sink stop
	// delivering and spool what is left at once (main closes it on a
	// second SIGINT or SIGTERM). nil: never.
	Hurry <-chan struct{}
	// Clock stamps samples and drives time-based detection; nil: the
	// system clock (sample.NewClock).
	Clock *sample.Clock
	// Shard is the part of the configuration's feeders this instance polls
	// when several instances share the file (config.Shard); 0/1 is all.
	Shard config.Shard
	// Reload asks for a configuration reload (main sends one on SIGHUP);
	// the channel sent receives the reload's error, nil on success (it
	// must be buffered). nil: reloads only come from POST /-/reload.
	Reload <-chan chan error
}

// DefaultOptions returns options with every default set; callers fill in
// ConfigPath, Logger and Registry.
func DefaultOptions() Options {
	return Options{
		Getenv:          func(string) string { return "" },
		ShutdownTimeout: 10 * time.Second,
		Version:         "dev",
		Shard:           config.Shard{Index: 0, Count: 1},
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.ConfigPath == "" {
		errs = append(errs, errors.New("no config file given"))
	}
	if o.Logger == nil {
		errs = append(errs, errors.New("logger is nil"))
	}
	if o.Registry == nil {
		errs = append(errs, errors.New("registry is nil"))
	}
	if o.Getenv == nil {
		errs = append(errs, errors.New("getenv is nil"))
	}
	if o.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("shutdown timeout %v is not positive", o.ShutdownTimeout))
	}
	if err := o.Shard.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// workerLinger: a pipeline worker woken by a poll waits this long for the
// polls finishing right after it, so that it wakes once for them all, not
// once each. Measured at 1,000 devices (BENCHMARKS.md, "CPU per
// device-poll"): 41 -> 38 us of feederd CPU per device-poll; detection runs
// up to 5 ms later, against polls a second apart.
const workerLinger = 5 * time.Millisecond

// Run loads the configuration and runs feederd until ctx ends or a component
// fails; Options.Reload and POST /-/reload reload the configuration
// (reload.go). Teardown is ordered: a reload in progress ends, then the
// pollers stop, then the pipeline drains its rings, then the alert
// dispatcher and the InfluxDB sink flush what they produced (both at once,
// each bounded), then the HTTP server stops.
func Run(ctx context.Context, opts Options) (err error) {
	if err := opts.validate(); err != nil {
		return fmt.Errorf("invalid options: %w", err)
	}
	log := opts.Logger
	model, err := config.Load(opts.ConfigPath, config.LoadOptions{Getenv: opts.Getenv})
	if err != nil {
		return err
	}
	// From here on the model holds only this instance's feeders.
	model = model.Shard(opts.Shard)
	if len(model.Devices) == 0 {
		log.Warn("this shard owns no feeders: nothing to poll", "shard", opts.Shard.String())
	}
	// Metrics registered twice (a registry shared by mistake) are an error,
	// not a panic: every step below checks reg.err.
	reg := &checkedRegisterer{Registerer: opts.Registry}
	// What setup built is released if a later step fails.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "feederd_build_info",
			Help:        "Always 1; the version label says which build runs.",
			ConstLabels: prometheus.Labels{"version": opts.Version},
		}, func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "feederd_shard_info",
			Help:        "Always 1; index and count say which shard of the configuration's feeders this instance polls (-shard index/count; 0/1 is all).",
			ConstLabels: prometheus.Labels{"index": strconv.Itoa(opts.Shard.Index), "count": strconv.Itoa(opts.Shard.Count)},
		}, func() float64 { return 1 }),
	)
	if reg.err != nil {
		return reg.err
	}

	clock := opts.Clock
	if clock == nil {
		clock = sample.NewClock()
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "feederd_clock_offset_seconds",
		Help: "Wall clock minus the sample clock: a step of the wall clock that the sample clock is still absorbing at 500 µs/s.",
	}, func() float64 { return clock.Offset().Seconds() }))
	statePath := ""
	var outageStore grid.Store
	if opts.DataDir != "" {
		if err := os.MkdirAll(opts.DataDir, 0o750); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		unlock, err := lockDataDir(opts.DataDir)
		if err != nil {
			return err
		}
		defer unlock()
		statePath = filepath.Join(opts.DataDir, "detect-state.json")
		outageStore = grid.FileStore{Dir: filepath.Join(opts.DataDir, "outages")}
	}

	checks := map[string]api.Check{}
	var lines pipeline.LineSink
	var influxSink *influx.Sink
	if !model.Influx.Disabled {
		influxLog := log.With("component", "influx")
		var spool *influx.Spool
		if opts.DataDir != "" {
			spool, err = influx.OpenSpool(influx.SpoolOptions{
				Dir:           filepath.Join(opts.DataDir, "spool"),
				MaxBytes:      model.Influx.SpoolBudget,
				FsyncInterval: model.Influx.SpoolFsync,
				Logger:        influxLog,
			})
			if err != nil {
				return fmt.Errorf("influx sink: %w", err)
			}
		}
		influxSink, err = influx.NewSink(influx.SinkOptions{
			Config:       model.Influx,
			Logger:       influxLog,
			Registerer:   reg,
			FlushTimeout: opts.ShutdownTimeout,
			Spool:        spool,
			Hurry:        opts.Hurry,
		})
		if err != nil {
			if spool != nil {
				_ = spool.Close()
			}
			return fmt.Errorf("influx sink: %w", err)
		}
		undo = append(undo, influxSink.Close)
		lines = influxSink
		checks["influx"] = influxSink.Ready
	}
	// alerts is where everything that raises alerts sends them (Set and
	// Resolve never block, so shard workers may call them): the
	// dispatcher, or Discard when no receiver is configured.
	var alerts alert.Sink = alert.Discard{}
	var dispatcher *alert.Dispatcher
	if model.Alerting.Enabled() {
		dispatcher, err = alert.New(alertOptions(model.Alerting, log.With("component", "alert"), reg, opts.ShutdownTimeout))
		if err != nil {
			return err
		}
		checks["alert"] = dispatcher.Ready
		alerts = dispatcher
	}
	// The service desk's live view; it takes outage changes from the
	// shard workers (OnOutage) and sends ETRs into the outage alerts.
	live := api.NewLive(api.LiveOptions{Model: model, Logger: log.With("component", "desk"), Now: clock.Now})
	alerts = newDeskAlerts(alerts, live)
	policy := ring.DropOldest
	if model.Pipeline.DropPolicy == config.DropNewest {
		policy = ring.DropNewest
	}
	table, err := pipelineTable(model)
	if err != nil {
		return err
	}
	pipe, err := pipeline.New(pipeline.Options{
		Table:      table,
		Lines:      lines,
		Logger:     log.With("component", "pipeline"),
		Registerer: reg,
		Shards:     model.Pipeline.Shards,
		RingSize:   model.Pipeline.RingSize,
		Policy:     policy,
		BatchLines: model.Influx.BatchSize,
		Now:        clock.Now,
		StatePath:  statePath,
		Outages:    outageStore,
		OnOutage:   deskOutages(outageAlerts(alerts, log.With("component", "outages")), live),
		Linger:     workerLinger,
	})
	if err != nil {
		return err
	}
	checks["pipeline"] = pipe.Ready
	deskEvents := pipe.Events().Subscribe(deskEventsBuffer)
	var events *eventAlerts
	if dispatcher != nil {
		// Subscribed before the pipeline runs, so no event is missed.
		events = newEventAlerts(model, pipe.Events().Subscribe(eventAlertsBuffer), alerts)
	}
	poller, err := poll.New(poll.Options{
		Model:      model,
		Sink:       pipe,
		Logger:     log.With("component", "poll"),
		Registerer: reg,
		Now:        clock.Now,
	})
	if err != nil {
		return fmt.Errorf("poller: %w", err)
	}
	checks["poll"] = poller.Ready
	reloads := &reloader{
		log:  log.With("component", "reload"),
		path: opts.ConfigPath,
		load: func(path string) (*config.Model, error) {
			m, err := config.Load(path, config.LoadOptions{Getenv: opts.Getenv})
			if err != nil {
				return nil, err
			}
			return m.Shard(opts.Shard), nil
		},
		pauseTimeout: opts.ShutdownTimeout,
		now:          func() time.Time { return time.Unix(0, clock.Now()) },
		metrics:      newReloadMetrics(reg, time.Unix(0, clock.Now())),
		poller:       poller, pipe: pipe, live: live, events: events, running: model,
		signals: opts.Reload, requests: make(chan reloadRequest), done: make(chan struct{}),
	}

	listen := model.HTTP.Listen
	if opts.Listen != "" {
		listen = opts.Listen
	}
	srv, err := api.New(api.Options{
		Listen:          listen,
		Gatherer:        opts.Registry,
		Logger:          log.With("component", "api"),
		Checks:          checks,
		ShutdownTimeout: opts.ShutdownTimeout,
		Pprof:           opts.Pprof,
		Model:           model,
		Source:          pipe,
		Live:            live,
		Polls:           poller.Status,
		Token:           model.HTTP.Token,
		TLSCert:         model.HTTP.TLSCert,
		TLSKey:          model.HTTP.TLSKey,
		Reload:          reloads.viaAPI,
	})
	if err != nil {
		return err
	}
	reloads.srv = srv
	if reg.err != nil {
		return reg.err
	}
	log.Info("feederd started", "config", opts.ConfigPath, "http", srv.Addr(), "shard", opts.Shard.String(),
		"feeders", model.FeederCount(), "links", len(model.Links), "devices", len(model.Devices), "version", opts.Version)
	if opts.OnListen != nil {
		opts.OnListen(srv.Addr())
	}

	// The components, and below the order in which they stop: pollers
	// first (they stop at once when ctx ends), then the pipeline drains
	// what they put, the event consumers end with its stream, the sinks
	// deliver or spool, and the HTTP server answers to the end.
	st := newStages(log)
	st.add("clock", nil, func(ctx context.Context) error { return syncClock(ctx, clock, log.With("component", "clock")) })
	st.add("reload", nil, reloads.run)
	st.add("poll", ctx, poller.Run)
	st.add("pipeline", nil, pipe.Run)
	if influxSink != nil {
		st.add("influx", nil, influxSink.Run)
	}
	if dispatcher != nil {
		st.add("alert", nil, dispatcher.Run)
		// It ends when the pipeline closes its event stream.
		st.add("event-alerts", nil, func(context.Context) error { return events.run(pipe.Resumed()) })
	}
	st.add("http", nil, srv.Run)
	// It ends when the pipeline closes its event stream.
	st.add("desk", nil, func(context.Context) error { return live.Run(context.Background(), deskEvents.C, pipe) })
	st.start()
	st.waitFirst(ctx)

	// Each step waits at most its deadline. The sinks' own flush is bounded
	// by ShutdownTimeout (then the InfluxDB sink spools); theirs adds a
	// margin for the spooling.
	pipe.Quiesce()
	step := opts.ShutdownTimeout
	// A reload in progress ends first: it pauses the pollers and changes
	// the pipeline.
	st.stop(2*step, "reload")
	st.stop(step, "poll")
	st.stop(step, "pipeline")
	st.stop(step, "event-alerts", "desk")
	st.stop(2*step, "influx", "alert")
	st.stop(step, "http")
	st.stop(step, "clock")
	log.Info("feederd stopped")
	return st.failed
}

// syncClock slews the sample clock towards the wall clock once a second
// until ctx ends, and says when the wall clock stepped.
func syncClock(ctx context.Context, c *sample.Clock, log *slog.Logger) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last time.Duration
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		off := c.Sync()
		if (off - last).Abs() > time.Second {
			log.Warn("wall clock stepped: sample times follow the monotonic clock and slew to the wall clock at 500 µs/s",
				"offset", off)
		}
		last = off
	}
}
