// Command rtusim serves simulated feeders — breaker relays, recloser
// controllers, switches and meters on a feeder topology with load, voltage
// drop and protection — over Modbus TCP, RTU over TCP and serial RTU, so
// feederd and test rigs can run without hardware.
//
//	rtusim [-config configs/sim/demo.yaml] [-scenario testdata/scenarios/lockout.yaml]
//	       [-http 127.0.0.1:9201] [-token-file F] [-allow-host name,...]
//	       [-seed 7] [-time-scale 10] [-log-level info]
//
// It prints one line per device once its endpoint listens, e.g.
// "serving F101-BRK unit 1 on tcp://127.0.0.1:5020", and "serving http on
// ..." for the HTTP API (devices' state and the control API) when an HTTP
// address is configured. A scenario plays from the start; -seed and
// -time-scale override the scenario's and the configuration's.
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
	"strconv"
	"strings"
	"syscall"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/sim"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2 // bad flags or an invalid config or scenario file
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rtusim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "configs/sim/demo.yaml", "simulator configuration file")
	scenario := fs.String("scenario", "", "scenario file to play from the start")
	httpAddr := fs.String("http", "", "HTTP address of the API (overrides http in the file; port 0 picks one)")
	seed := fs.String("seed", "", "noise seed (overrides the scenario's and the configuration's)")
	scale := fs.Float64("time-scale", 0, "simulated seconds per wall second (overrides the scenario's; default 1)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	tokenFile := fs.String("token-file", "", "file holding the bearer token the HTTP API requires (default: $RTUSIM_TOKEN; neither: no token)")
	allowHosts := fs.String("allow-host", "", "comma-separated host names the HTTP API answers to besides IP addresses and localhost")
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
	opts := sim.DefaultOptions()
	if *seed != "" {
		v, err := strconv.ParseUint(*seed, 10, 64)
		if err != nil {
			fmt.Fprintf(stderr, "rtusim: -seed %q is not a whole number\n", *seed)
			return exitUsage
		}
		opts.Seed = &v
	}
	if *scale < 0 || *scale > 1000 {
		fmt.Fprintf(stderr, "rtusim: -time-scale %g is outside (0, 1000]\n", *scale)
		return exitUsage
	}
	opts.TimeScale = *scale
	opts.Control.Token = os.Getenv("RTUSIM_TOKEN")
	if *tokenFile != "" {
		b, err := config.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintln(stderr, "rtusim: -token-file:", err)
			return exitUsage
		}
		if opts.Control.Token = strings.TrimSpace(string(b)); opts.Control.Token == "" {
			fmt.Fprintf(stderr, "rtusim: -token-file %s is empty\n", *tokenFile)
			return exitUsage
		}
	}
	if *allowHosts != "" {
		opts.Control.Hosts = strings.Split(*allowHosts, ",")
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))

	// config.ReadFile, as for feederd's files: a device or a FIFO given as
	// a file is an error at once, not a read that never ends.
	data, err := config.ReadFile(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "read sim config:", err)
		return exitUsage
	}
	cfg, err := sim.ParseConfig(*cfgPath, data, config.LoadProfile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	if *scenario != "" {
		data, err := config.ReadFile(*scenario)
		if err != nil {
			fmt.Fprintln(stderr, "read scenario:", err)
			return exitUsage
		}
		sc, err := sim.ParseScenario(*scenario, data)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
		opts.Scenario = sc
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts.Config = cfg
	opts.Logger = logger
	opts.HTTPListen = *httpAddr
	opts.OnListen = func(l sim.Listening) { fmt.Fprintln(stdout, l) }
	if err := sim.Run(ctx, opts); err != nil && !errors.Is(err, context.Canceled) {
		if errors.Is(err, sim.ErrScenario) {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
		logger.Error("rtusim failed", "err", err)
		return exitFailure
	}
	return exitOK
}
