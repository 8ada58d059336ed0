// Command feederd polls feeder RTUs, relays, reclosers and switches over
// Modbus, writes their measurements to InfluxDB and serves its metrics.
//
//	feederd [run] -config FILE [-shard i/n]
//	                                  run the daemon (for shard i of n instances)
//	feederd check-config [-shard i/n] FILE
//	                                  validate a config file, exit 0 or 2
//	feederd plan -config FILE [-device ID] [-shard i/n]
//	                                  print the read plan of each device
//	feederd probe -url URL -unit N -profile FILE
//	                                  read a device once and print its points
//	feederd version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/app"
	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/poll"
	"github.com/feederd/feederd/internal/sample"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes. probe adds two of its own (see probe).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2 // bad flags or an invalid config file
	// exitSomeBad: probe read the device, but not every point is good.
	exitSomeBad = 3
	// exitNoneGood: probe opened the link, but no point is good.
	exitNoneGood = 4
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	switch {
	case len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help"):
		usage(stdout)
		return exitOK
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runDaemon(args, stdout, stderr)
	case "check-config":
		return checkConfig(args, stdout, stderr)
	case "plan":
		return plan(args, stdout, stderr)
	case "probe":
		return probe(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "feederd", version)
		return exitOK
	case "help":
		usage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "feederd: unknown command %q\n\n", cmd)
	usage(stderr)
	return exitUsage
}

// parseFlags parses args into fs. -h and -help print the command's synopsis
// and flags to stdout and give exit 0; a bad flag is reported on stderr
// (by the flag package) and gives exitUsage. ok is true when the command
// should go on.
func parseFlags(fs *flag.FlagSet, synopsis string, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below, on stdout for -h
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "usage: %s\n\nflags:\n", synopsis)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return exitOK, false
	}
	if err != nil {
		fmt.Fprintf(stderr, "usage: %s\n", synopsis)
		return exitUsage, false
	}
	return exitOK, true
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  feederd [run] -config FILE [-shard i/n] [-data.dir data] [-http.listen ADDR] [-http.pprof] [-log.level info] [-log.format text|json]
  feederd check-config [-shard i/n] FILE
  feederd plan -config FILE [-device ID] [-shard i/n]
  feederd probe -url URL -unit N -profile FILE [-timeout 1s] [-serial 19200,8,N,1] [-tls.cert F -tls.key F -tls.ca F]
  feederd version
  feederd COMMAND -h    the command's flags
`)
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log.level: %w", err)
	}
	hopts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		// JSON would carry a duration as integer nanoseconds; "261ms" reads
		// as the text format's does.
		hopts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.StringValue(a.Value.Duration().String())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	}
	return nil, fmt.Errorf("-log.format: %q is neither text nor json", format)
}

func runDaemon(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("feederd run", flag.ContinueOnError)
	cfg := fs.String("config", "", "configuration file (required)")
	listen := fs.String("http.listen", "", "HTTP listen address (overrides http.listen in the file)")
	level := fs.String("log.level", "info", "log level: debug, info, warn, error")
	format := fs.String("log.format", "text", "log format: text or json")
	pprof := fs.Bool("http.pprof", false, "serve /debug/pprof/ on the HTTP listener")
	dataDir := fs.String("data.dir", "data", "directory for what is kept across restarts (detection's events in progress, the InfluxDB spool); \"\" keeps nothing")
	shard := shardFlag(fs)
	if code, ok := parseFlags(fs, "feederd [run] -config FILE [flags]", args, stdout, stderr); !ok {
		return code
	}
	if *cfg == "" {
		fmt.Fprintln(stderr, "feederd: -config FILE is required (configs/demo.yaml is the demo's)")
		return exitUsage
	}
	logger, err := newLogger(stderr, *level, *format)
	if err != nil {
		fmt.Fprintln(stderr, "feederd:", err)
		return exitUsage
	}
	// The first SIGINT or SIGTERM starts the ordered shutdown; a second one
	// makes the InfluxDB sink stop delivering and spool what is left; a
	// third exits at once.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hurry := make(chan struct{})
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	runDone := make(chan struct{})
	defer close(runDone)
	go func() {
		for n := 1; ; n++ {
			select {
			case <-runDone:
				return
			case sig := <-sigs:
				switch n {
				case 1:
					logger.Info("stop requested: stopping polls, delivering or spooling what is queued", "signal", sig.String())
					cancel()
				case 2:
					logger.Warn("second stop request: spooling what is not delivered yet and stopping", "signal", sig.String())
					close(hurry)
				default:
					logger.Error("third stop request: exiting now; lines not yet spooled are lost", "signal", sig.String())
					os.Exit(exitFailure)
				}
			}
		}
	}()
	// SIGHUP reloads the configuration (internal/app/reload.go); app logs
	// what the reload changed, or why it changed nothing. Signals that come
	// while a reload runs make one more reload after it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan chan error)
	go func() {
		for {
			select {
			case <-hup:
				logger.Info("SIGHUP: reloading the configuration", "config", *cfg)
				select {
				case reload <- make(chan error, 1):
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()

	tuneGC(os.Getenv, logger)
	opts := app.DefaultOptions()
	opts.ConfigPath = *cfg
	opts.Getenv = os.Getenv
	opts.Logger = logger
	opts.Registry = prometheus.NewRegistry()
	opts.Listen = *listen
	opts.Version = version
	opts.Pprof = *pprof
	opts.DataDir = *dataDir
	opts.Shard = *shard
	opts.Hurry = hurry
	opts.Reload = reload
	if err := app.Run(ctx, opts); err != nil {
		var cerr *config.Errors
		if errors.As(err, &cerr) || errors.Is(err, iofs.ErrNotExist) {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
		logger.Error("feederd failed", "err", err)
		return exitFailure
	}
	return exitOK
}

func checkConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("feederd check-config", flag.ContinueOnError)
	shard := shardFlag(fs)
	if code, ok := parseFlags(fs, "feederd check-config [-shard i/n] FILE", args, stdout, stderr); !ok {
		return code
	}
	sharded := false
	fs.Visit(func(f *flag.Flag) { sharded = sharded || f.Name == "shard" })
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: feederd check-config [-shard i/n] FILE")
		return exitUsage
	}
	path := fs.Arg(0)
	m, err := config.Load(path, config.LoadOptions{Getenv: os.Getenv})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s: ok: %s\n", path, summary(m, false))
	for _, n := range poll.TimeoutNotes(m) {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	if sharded {
		fmt.Fprintf(stdout, "shard %s: %s\n", shard, summary(m.Shard(*shard), true))
	}
	return exitOK
}

// summary counts a model's links, devices and points, and its feeders too
// when asked.
func summary(m *config.Model, feeders bool) string {
	count := func(n int, what string) string {
		if n == 1 {
			return "1 " + what
		}
		return fmt.Sprintf("%d %ss", n, what)
	}
	points := 0
	for _, d := range m.Devices {
		points += len(d.Points)
	}
	s := fmt.Sprintf("%s, %s, %s", count(len(m.Links), "link"), count(len(m.Devices), "device"), count(points, "point"))
	if feeders {
		s = count(m.FeederCount(), "feeder") + ", " + s
	}
	return s
}

// shardFlag defines -shard on fs; its value is 0/1, all feeders, unless
// the flag is given.
func shardFlag(fs *flag.FlagSet) *config.Shard {
	s := &config.Shard{Index: 0, Count: 1}
	fs.Func("shard", "poll only shard `i/n` of the configuration's feeders, for n instances sharing one file (default 0/1: all)", func(v string) error {
		sh, err := config.ParseShard(v)
		if err != nil {
			return err
		}
		*s = sh
		return nil
	})
	return s
}

func plan(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("feederd plan", flag.ContinueOnError)
	cfg := fs.String("config", "configs/demo.yaml", "configuration file")
	device := fs.String("device", "", "only this device")
	shard := shardFlag(fs)
	if code, ok := parseFlags(fs, "feederd plan -config FILE [-device ID] [-shard i/n]", args, stdout, stderr); !ok {
		return code
	}
	m, err := config.Load(*cfg, config.LoadOptions{Getenv: os.Getenv})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	m = m.Shard(*shard)
	found := false
	for _, d := range m.Devices {
		if *device != "" && d.ID != *device {
			continue
		}
		found = true
		if err := poll.FormatPlan(stdout, d, poll.BuildPlan(d.Points, d.Quirks)); err != nil {
			fmt.Fprintln(stderr, "feederd:", err)
			return exitFailure
		}
	}
	if !found {
		fmt.Fprintf(stderr, "feederd: %s: no device %q in shard %s\n", *cfg, *device, shard)
		return exitUsage
	}
	return exitOK
}

// probe reads one device once and prints its points. Exit codes: 0 every
// point is good; 3 some point is not; 4 no point is (the device does not
// answer at that unit, or rejects every request); 1 the link cannot be
// opened; 2 bad flags or profile.
func probe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("feederd probe", flag.ContinueOnError)
	url := fs.String("url", "", "device URL (required): tcp://host:502, rtu:///dev/ttyS0, rtuovertcp://host:port, tcp+tls://host:802")
	var unit uint
	fs.UintVar(&unit, "unit", 0, "Modbus unit ID, 0..247 (required)")
	profilePath := fs.String("profile", "", "profile file, configs/profiles/*.yaml (required)")
	timeout := fs.Duration("timeout", time.Second, "response timeout")
	serial := fs.String("serial", "19200,8,N,1", "serial settings for rtu:// (all four) and rtuovertcp:// (baud): baud,data bits,parity,stop bits")
	cert := fs.String("tls.cert", "", "client certificate for tcp+tls://")
	key := fs.String("tls.key", "", "client key for tcp+tls://")
	ca := fs.String("tls.ca", "", "CA certificate for tcp+tls://")
	const synopsis = "feederd probe -url URL -unit N -profile FILE [-timeout 1s] [-serial 19200,8,N,1] [-tls.cert F -tls.key F -tls.ca F]"
	if code, ok := parseFlags(fs, synopsis, args, stdout, stderr); !ok {
		return code
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var missing []string
	for _, name := range []string{"url", "unit", "profile"} {
		if !set[name] {
			missing = append(missing, "-"+name)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "feederd probe: %s required\nusage: %s\n", strings.Join(missing, ", "), synopsis)
		return exitUsage
	}
	scheme, _, _ := strings.Cut(*url, "://")
	if set["serial"] && scheme != "rtu" && scheme != "rtuovertcp" {
		fmt.Fprintf(stderr, "feederd probe: -serial is for rtu:// and rtuovertcp:// URLs, not %s://\n", scheme)
		return exitUsage
	}
	if (set["tls.cert"] || set["tls.key"] || set["tls.ca"]) && scheme != "tcp+tls" {
		fmt.Fprintf(stderr, "feederd probe: -tls.cert, -tls.key and -tls.ca are for tcp+tls:// URLs, not %s://\n", scheme)
		return exitUsage
	}
	dev, err := config.ProbeDevice(config.ProbeSpec{
		URL: *url, Unit: unit, ProfilePath: *profilePath, Timeout: *timeout,
		Serial: *serial, CertFile: *cert, KeyFile: *key, CAFile: *ca,
	})
	if err != nil {
		fmt.Fprintln(stderr, "feederd probe:", err)
		return exitUsage
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	values, err := poll.Probe(ctx, dev, logger)
	if err != nil {
		fmt.Fprintln(stderr, "feederd probe:", err)
		return exitFailure
	}
	if err := poll.FormatProbe(stdout, values); err != nil {
		fmt.Fprintln(stderr, "feederd probe:", err)
		return exitFailure
	}
	good := 0
	for _, v := range values {
		if v.Quality == sample.Good {
			good++
		}
	}
	switch {
	case good == len(values):
		return exitOK
	case good == 0:
		fmt.Fprintf(stderr, "feederd probe: no point of %d is good\n", len(values))
		return exitNoneGood
	}
	fmt.Fprintf(stderr, "feederd probe: %d of %d points are not good\n", len(values)-good, len(values))
	return exitSomeBad
}
