package sim

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/feederd/feederd/internal/sim/devsrv"
)

// ErrScenario is the error Run returns (wrapped) when its scenario names
// targets or points the configuration does not have.
var ErrScenario = errors.New("scenario does not fit the configuration")

// Options are what Run needs; rtusim's main fills them from flags.
type Options struct {
	Config *Config
	Logger *slog.Logger
	// HTTPListen overrides the config's http address; "" keeps it (and
	// none in either serves no HTTP). Port 0 picks a free port.
	HTTPListen string
	// Control guards the HTTP API (see Protect).
	Control ControlOptions
	Server  devsrv.ServerOptions
	// OnListen is called once per device when its endpoint is bound, and
	// once for the HTTP endpoint (Device nil).
	OnListen func(Listening)
	// Clock drives simulated time (default RealClock).
	Clock Clock
	// Scenario, when set, is played from the start.
	Scenario *Scenario
	// Seed, when set, overrides the scenario's seed and the config's.
	Seed *uint64
	// TimeScale, when not 0, overrides the scenario's (default 1):
	// simulated seconds per clock second.
	TimeScale float64
}

// Listening reports a bound endpoint.
type Listening struct {
	URL    string
	Device *devsrv.Device // nil for the HTTP endpoint
}

// String is the line rtusim prints: "serving F101-BRK unit 1 on
// tcp://127.0.0.1:5020".
func (l Listening) String() string {
	if l.Device == nil {
		return "serving http on " + l.URL
	}
	return fmt.Sprintf("serving %s unit %d on %s", l.Device.ID, l.Device.Unit, l.URL)
}

// DefaultOptions returns options with defaults set; callers set Config and
// Logger.
func DefaultOptions() Options {
	return Options{Clock: RealClock{}, OnListen: func(Listening) {}}
}

func (o *Options) validate() error {
	var errs []error
	if o.Config == nil {
		errs = append(errs, errors.New("no sim config"))
	} else if o.Config.Tick <= 0 {
		errs = append(errs, fmt.Errorf("tick %s is not positive", o.Config.Tick))
	}
	if o.Logger == nil {
		errs = append(errs, errors.New("no logger"))
	}
	if o.Clock == nil {
		errs = append(errs, errors.New("no clock"))
	}
	if o.OnListen == nil {
		errs = append(errs, errors.New("no OnListen callback"))
	}
	if o.TimeScale < 0 || o.TimeScale > maxTimeScale {
		errs = append(errs, fmt.Errorf("time scale %g is outside (0, %d]", o.TimeScale, maxTimeScale))
	}
	return errors.Join(errs...)
}

// Run builds the simulation of opts.Config, binds every endpoint (failing
// before serving anything if one cannot be bound), plays the scenario, then
// serves the devices and moves simulated time with the clock until ctx is
// done. It returns after everything it started has stopped.
func Run(ctx context.Context, opts Options) error {
	if err := opts.validate(); err != nil {
		return fmt.Errorf("start rtusim: %w", err)
	}
	cfg := *opts.Config
	log := opts.Logger.With("component", "sim")
	opts.Server.Logger = log
	scale := 1.0
	start := opts.Clock.Now()
	if sc := opts.Scenario; sc != nil {
		if sc.Seed != nil {
			cfg.Seed = *sc.Seed
		}
		if sc.TimeScale != 0 {
			scale = sc.TimeScale
		}
		if !sc.Start.IsZero() {
			start = sc.Start
		}
	}
	if opts.Seed != nil {
		cfg.Seed = *opts.Seed
	}
	if opts.TimeScale != 0 {
		scale = opts.TimeScale
	}
	s, err := Build(&cfg, start)
	if err != nil {
		return fmt.Errorf("start rtusim: %w", err)
	}
	s.log = log
	if opts.Scenario != nil {
		if err := s.Play(opts.Scenario); err != nil {
			return fmt.Errorf("start rtusim: %w:\n%w", ErrScenario, err)
		}
	}

	var eps []*devsrv.Endpoint
	closeAll := func() {
		for _, e := range eps {
			e.Close()
		}
	}
	var tlsCfg *tls.Config
	if cfg.TLS != nil {
		if tlsCfg, err = devsrv.LoadTLSConfig(cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.ClientCAFile); err != nil {
			return fmt.Errorf("start rtusim: %w", err)
		}
	}
	urls := map[*devsrv.Device]string{}
	for _, ec := range cfg.Endpoints {
		devs := make([]*devsrv.Device, len(ec.Devices))
		for i, di := range ec.Devices {
			devs[i] = s.Devices[di]
		}
		e, err := openEndpoint(ec, devs, opts.Server, tlsCfg)
		if err != nil {
			closeAll()
			return fmt.Errorf("start rtusim: %w", err)
		}
		eps = append(eps, e)
		for _, d := range devs {
			urls[d] = e.URL
		}
	}
	s.mu.Lock()
	s.urls = urls
	s.mu.Unlock()

	var httpLn net.Listener
	if addr := cmp.Or(opts.HTTPListen, cfg.HTTP); addr != "" {
		httpLn, err = net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("start rtusim: listen http on %s: %w", addr, err)
		}
	}

	for _, e := range eps {
		for _, d := range e.Units.Devices() {
			opts.OnListen(Listening{URL: e.URL, Device: d})
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	fail := func(err error) {
		if err == nil {
			return
		}
		errMu.Lock()
		if first == nil {
			first = err
		}
		errMu.Unlock()
		cancel()
	}
	for _, e := range eps {
		wg.Go(func() { fail(e.Serve(ctx)) })
	}
	// The clock wakes the simulation about once per simulated tick; the
	// physics steps on its own grid whatever the wake-ups.
	s.attach(opts.Clock, scale)
	wake := min(max(time.Duration(float64(cfg.Tick)/scale), 10*time.Millisecond), cfg.Tick)
	ticking := opts.Clock.Every(ctx, wake, func(time.Time) {
		s.mu.Lock()
		err := s.sync()
		s.mu.Unlock()
		if err != nil {
			fail(fmt.Errorf("simulate: %w", err))
		}
	})
	wg.Go(func() { <-ticking })
	if httpLn != nil {
		srv := &http.Server{Handler: Protect(s.Handler(), opts.Control), ReadHeaderTimeout: 5 * time.Second}
		wg.Go(func() {
			if err := srv.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fail(fmt.Errorf("serve http: %w", err))
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer scancel()
			if err := srv.Shutdown(sctx); err != nil {
				srv.Close()
			}
		})
		opts.OnListen(Listening{URL: "http://" + httpLn.Addr().String()})
	}
	log.Info("rtusim running", "devices", len(s.Devices), "endpoints", len(eps), "feeders", len(cfg.Feeders),
		"config", cfg.Source, "seed", cfg.Seed, "time_scale", scale, "start", start)
	wg.Wait()
	return first
}

func openEndpoint(ec EndpointConfig, devs []*devsrv.Device, o devsrv.ServerOptions, tlsCfg *tls.Config) (*devsrv.Endpoint, error) {
	u, err := devsrv.NewUnits(devs...)
	if err != nil {
		return nil, err
	}
	o.Gateway = ec.Gateway
	switch {
	case ec.Transport == devsrv.TransportTCP:
		return devsrv.ListenTCP(ec.Addr, u, o)
	case ec.Transport == devsrv.TransportTLS:
		return devsrv.ListenTLS(ec.Addr, u, o, tlsCfg)
	case ec.Transport == devsrv.TransportRTUOverTCP:
		return devsrv.ListenRTUOverTCP(ec.Addr, u, o)
	case ec.Transport == devsrv.TransportRTU && ec.PTY:
		return devsrv.OpenPTYBus(ec.Serial.Path, u, o)
	case ec.Transport == devsrv.TransportRTU:
		return devsrv.OpenSerialBus(ec.Serial, u, o)
	}
	return nil, fmt.Errorf("endpoint %s: unknown transport %q", ec.ID, ec.Transport)
}
