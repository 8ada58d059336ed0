package sim

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Options are what Run needs; rtusim's main fills them from flags.
type Options struct {
	Config *Config
	Logger *slog.Logger
	// HTTPListen overrides the config's http address; "" keeps it (and
	// none in either serves no HTTP). Port 0 picks a free port.
	HTTPListen string
	Server     ServerOptions
	// OnListen is called once per device when its endpoint is bound, and
	// once for the HTTP endpoint (Device nil).
	OnListen func(Listening)
	// Now is the clock of the value ticks (default time.Now).
	Now func() time.Time
}

// Listening reports a bound endpoint.
type Listening struct {
	URL    string
	Device *Device // nil for the HTTP endpoint
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
	return Options{Now: time.Now, OnListen: func(Listening) {}}
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
	if o.Now == nil {
		errs = append(errs, errors.New("no clock"))
	}
	if o.OnListen == nil {
		errs = append(errs, errors.New("no OnListen callback"))
	}
	return errors.Join(errs...)
}

// Sim is the set of simulated devices built from a Config.
type Sim struct {
	Devices []*Device
	drivers []Driver
	urls    map[*Device]string
}

// Build creates the devices of cfg with their Steady drivers and fixed
// values, and performs the first tick at now.
func Build(cfg *Config, now time.Time) (*Sim, error) {
	s := &Sim{urls: map[*Device]string{}}
	for _, dc := range cfg.Devices {
		d, err := NewDevice(dc.ID, dc.Unit, dc.Profile)
		if err != nil {
			return nil, err
		}
		drv, err := NewSteady(d, SteadyConfig{Nominal: dc.NominalVoltage, Current: dc.Current, Seed: cfg.Seed, Fixed: dc.Values})
		if err != nil {
			return nil, err
		}
		for name, text := range dc.Strings {
			if err := d.SetString(name, text); err != nil {
				return nil, err
			}
		}
		if err := drv.Tick(now); err != nil {
			return nil, err
		}
		s.Devices = append(s.Devices, d)
		s.drivers = append(s.drivers, drv)
	}
	return s, nil
}

// Tick advances every driver to now.
func (s *Sim) Tick(now time.Time) error {
	for _, d := range s.drivers {
		if err := d.Tick(now); err != nil {
			return err
		}
	}
	return nil
}

// DeviceState is a device's entry in GET /api/devices.
type DeviceState struct {
	ID      string         `json:"id"`
	Unit    uint8          `json:"unit"`
	Profile string         `json:"profile"`
	URL     string         `json:"url"`
	Values  map[string]any `json:"values"`
}

// States returns every device's current values.
func (s *Sim) States() []DeviceState {
	out := make([]DeviceState, len(s.Devices))
	for i, d := range s.Devices {
		out[i] = DeviceState{ID: d.ID, Unit: d.Unit, Profile: d.Profile.Name, URL: s.urls[d], Values: d.Values()}
	}
	return out
}

// Run builds the devices of opts.Config, binds every endpoint (failing
// before serving anything if one cannot be bound), then serves them and
// ticks the values until ctx is done. It returns after everything it
// started has stopped.
func Run(ctx context.Context, opts Options) error {
	if err := opts.validate(); err != nil {
		return fmt.Errorf("start rtusim: %w", err)
	}
	cfg := opts.Config
	log := opts.Logger.With("component", "sim")
	opts.Server.Logger = log
	s, err := Build(cfg, opts.Now())
	if err != nil {
		return fmt.Errorf("start rtusim: %w", err)
	}

	var eps []*Endpoint
	closeAll := func() {
		for _, e := range eps {
			e.Close()
		}
	}
	for _, ec := range cfg.Endpoints {
		devs := make([]*Device, len(ec.Devices))
		for i, di := range ec.Devices {
			devs[i] = s.Devices[di]
		}
		e, err := openEndpoint(ec, devs, opts.Server)
		if err != nil {
			closeAll()
			return fmt.Errorf("start rtusim: %w", err)
		}
		eps = append(eps, e)
		for _, d := range devs {
			s.urls[d] = e.URL
		}
	}

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
	if httpLn != nil {
		srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
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
	wg.Go(func() {
		t := time.NewTicker(cfg.Tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.Tick(opts.Now()); err != nil {
					fail(fmt.Errorf("tick: %w", err))
					return
				}
			}
		}
	})
	log.Info("rtusim running", "devices", len(s.Devices), "endpoints", len(eps), "config", cfg.Source)
	wg.Wait()
	return first
}

func openEndpoint(ec EndpointConfig, devs []*Device, o ServerOptions) (*Endpoint, error) {
	u, err := NewUnits(devs...)
	if err != nil {
		return nil, err
	}
	switch ec.Transport {
	case TransportTCP:
		return ListenTCP(ec.Addr, u, o)
	case TransportRTUOverTCP:
		return ListenRTUOverTCP(ec.Addr, u, o)
	case TransportRTU:
		return OpenSerialBus(ec.Serial, u, o)
	}
	return nil, fmt.Errorf("endpoint %s: unknown transport %q", ec.ID, ec.Transport)
}

// Handler serves GET /api/devices (every device's values as JSON), GET
// /api/devices/{id} and GET /healthz. The control API comes later.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /api/devices", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.States())
	})
	mux.HandleFunc("GET /api/devices/{id}", func(w http.ResponseWriter, r *http.Request) {
		for _, st := range s.States() {
			if st.ID == r.PathValue("id") {
				writeJSON(w, st)
				return
			}
		}
		http.Error(w, "no such device", http.StatusNotFound)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
