// Command rtusim serves simulated feeder devices (relays, recloser
// controllers, meters) over Modbus TCP, RTU over TCP and serial RTU, so
// feederd can be run and tested without hardware.
//
//	rtusim [-config configs/sim/demo.yaml] [-http 127.0.0.1:9201] [-log-level info]
//
// It prints one line per device once its endpoint listens, e.g.
// "serving F101-BRK unit 1 on tcp://127.0.0.1:5020", and serves the
// devices' current values as JSON on GET /api/devices when an HTTP address
// is configured.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/sim"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2 // bad flags or an invalid config file
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rtusim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "configs/sim/demo.yaml", "simulator configuration file")
	httpAddr := fs.String("http", "", "HTTP address for /api/devices and /healthz (overrides http in the file; port 0 picks one)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rtusim: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintln(stderr, "rtusim: -log-level:", err)
		return exitUsage
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))

	cfg, err := sim.LoadConfig(*cfgPath, config.LoadProfile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts := sim.DefaultOptions()
	opts.Config = cfg
	opts.Logger = logger
	opts.HTTPListen = *httpAddr
	opts.OnListen = func(l sim.Listening) { fmt.Fprintln(stdout, l) }
	if err := sim.Run(ctx, opts); err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("rtusim failed", "err", err)
		return exitFailure
	}
	return exitOK
}
