// Package api serves feederd's HTTP endpoints: /metrics for Prometheus,
// /healthz (the process is alive), /readyz (every component it depends on
// is working), and the service desk: the JSON API under /api/v1, its live
// stream and the page at /. The desk reads snapshots the pipeline's owners
// publish (Source, Live), never the pipeline's state itself.
package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/poll"
)

// Check reports whether one component is ready; nil means ready. It must be
// cheap and safe to call from any goroutine.
type Check func() error

// Options configure a Server.
type Options struct {
	// Listen is host:port; port 0 picks a free one (see Server.Addr).
	Listen   string
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
	// Checks are the readiness checks by component name.
	Checks map[string]Check
	// ShutdownTimeout bounds the graceful stop (default 5s).
	ShutdownTimeout time.Duration
	// Pprof mounts net/http/pprof under /debug/pprof/ (off by default: it
	// lets anyone who reaches the port profile the process).
	Pprof bool

	// The service desk; without Model, Source and Live only /metrics,
	// /healthz and /readyz are served.
	Model  *config.Model
	Source Source
	Live   *Live
	// Polls is the poller's device status (comms, latency, qualities).
	Polls func() []poll.DeviceStatus
	// Token is the bearer token of the desk (see security.go); required
	// when Listen is not a loopback address.
	Token config.Secret
	// TLSCert and TLSKey are PEM files; both set: serve HTTPS.
	TLSCert, TLSKey string
	// Reload, when set, serves POST /-/reload (reload.go): it reloads the
	// configuration and returns a summary of what changed, encoded as JSON,
	// or why nothing did.
	Reload func(ctx context.Context) (any, error)
}

// Server is the HTTP endpoint of the daemon.
type Server struct {
	opts Options
	ln   net.Listener
	srv  *http.Server
	// readsNeedToken: the listener is not loopback, so reading the desk
	// needs the token too.
	readsNeedToken bool
	routes         []route
	// model is the configuration the desk shows; SetModel swaps it.
	model    atomic.Pointer[config.Model]
	pathOnly *http.ServeMux
	page     *pageRenderer
	// shutdown ends the live streams when the server shuts down.
	shutdown    context.Context
	stopStreams context.CancelFunc
}

// New binds the listener at once, so that the address is known (and a port
// in use is reported) before anything else starts.
func New(opts Options) (*Server, error) {
	if opts.Gatherer == nil || opts.Logger == nil {
		return nil, errors.New("api: gatherer and logger are required")
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 5 * time.Second
	}
	if err := checkSecurity(&opts); err != nil {
		return nil, err
	}
	var tlsCfg *tls.Config
	if opts.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(opts.TLSCert, opts.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("http server: load TLS certificate %s and key %s: %w", opts.TLSCert, opts.TLSKey, err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("http server: %w", err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s := &Server{opts: opts, ln: ln, readsNeedToken: !config.LoopbackListen(opts.Listen)}
	s.model.Store(opts.Model)
	s.shutdown, s.stopStreams = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	if opts.Reload != nil {
		mux.HandleFunc("POST /-/reload", s.reload)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	if opts.Model != nil && opts.Source != nil && opts.Live != nil {
		if err := s.mountDesk(mux); err != nil {
			ln.Close()
			return nil, err
		}
	} else {
		mux.HandleFunc("GET /{$}", s.index)
	}
	if opts.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	s.srv.RegisterOnShutdown(s.stopStreams)
	return s, nil
}

// SetModel makes the desk show m, a reloaded configuration. It is safe to
// call while the server runs.
func (s *Server) SetModel(m *config.Model) { s.model.Store(m) }

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then shuts down within ShutdownTimeout.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// readyz answers 200 when every check passes and 503 otherwise, with one
// line per component ("sink: ok", "poller: no poll completed yet"), or JSON
// when asked for it.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	names := make([]string, 0, len(s.opts.Checks))
	for n := range s.opts.Checks {
		names = append(names, n)
	}
	sort.Strings(names)
	status := make(map[string]string, len(names))
	ready := true
	for _, n := range names {
		if err := s.opts.Checks[n](); err != nil {
			status[n] = err.Error()
			ready = false
		} else {
			status[n] = "ok"
		}
	}
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	if r.Header.Get("Accept") == "application/json" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": ready, "components": status})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	for _, n := range names {
		fmt.Fprintf(w, "%s: %s\n", n, status[n])
	}
}

func (s *Server) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "feederd\n\n/metrics  Prometheus metrics\n/healthz  liveness\n/readyz   readiness of each component")
	if s.opts.Reload != nil {
		fmt.Fprintln(w, "POST /-/reload  reload the configuration")
	}
}
