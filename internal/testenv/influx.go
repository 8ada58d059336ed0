// Package testenv starts the real external programs that feederd's
// integration tests run against (InfluxDB, Alertmanager, socat, ...), each
// bound to 127.0.0.1, with its state in the test's temporary directory and
// stopped by the test's cleanup. Tests fail, never skip, when a program is missing: the
// message names the command that installs it.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InfluxDatabase is the database StartInflux creates.
const InfluxDatabase = "feederd"

const (
	influxStartTimeout = 30 * time.Second
	influxStopTimeout  = 10 * time.Second
	// influxStartAttempts bounds retries when the chosen HTTP port was taken
	// by another process between picking it and influxd binding it.
	influxStartAttempts = 5
	influxLogTail       = 64 << 10
)

// Influx is a running InfluxDB 1.8 server owned by one test.
type Influx struct {
	// URL is the server's base URL, http://127.0.0.1:port.
	URL string
	// Database is the database created at start ("feederd").
	Database string
	// Bucket is Database/autogen, as the v2 compatibility API names it.
	Bucket string

	t       testing.TB
	bin     string
	dir     string
	addr    string
	cfgPath string
	logPath string
	client  *http.Client
	// cq turns InfluxDB's continuous-query service on (StartInfluxWithCQ).
	cq bool

	mu   sync.Mutex
	proc *influxProc
}

// influxProc is one run of the influxd process.
type influxProc struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan struct{} // closed when Wait returned
	err    error         // Wait's result, valid after done
}

// StartInflux starts influxd on a free port of 127.0.0.1 and creates the
// database. The server is stopped when the test ends; its log is printed if
// the test failed.
func StartInflux(t testing.TB) *Influx {
	t.Helper()
	return startInflux(t, "", false)
}

// StartInfluxWithCQ is StartInflux with the continuous-query service on,
// checking every second whether a query is due, for tests of the
// downsampling queries the README recommends.
func StartInfluxWithCQ(t testing.TB) *Influx {
	t.Helper()
	return startInflux(t, "", true)
}

// StartInfluxOn starts influxd on addr ("127.0.0.1:port"), for tests that
// point a client at an address before the server exists there.
func StartInfluxOn(t testing.TB, addr string) *Influx {
	t.Helper()
	return startInflux(t, addr, false)
}

// FreeAddr returns a 127.0.0.1 address where nothing listens at the time of
// the call. Another process may take it before the caller binds it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("close probe listener %s: %v", addr, err)
	}
	return addr
}

// InfluxdPath returns the influxd binary: $FEEDERD_INFLUXD, else bin/influxd
// in the module root. It fails the test with the build command if missing.
func InfluxdPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("FEEDERD_INFLUXD"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("FEEDERD_INFLUXD=%s: %v", p, err)
		}
		return p
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("locate influxd: %v", err)
	}
	p := filepath.Join(root, "bin", "influxd")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("influxd not found at %s: build it with `make -C %s bin/influxd` "+
			"(that is `GOBIN=%s go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10`, "+
			"about a minute) or point FEEDERD_INFLUXD at an influxd 1.8 binary", p, root, filepath.Join(root, "bin"))
	}
	return p
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("get working directory: %w", err)
	}
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod in %s or any parent", dir)
		}
		d = parent
	}
}

func startInflux(t testing.TB, addr string, cq bool) *Influx {
	t.Helper()
	dir := t.TempDir()
	i := &Influx{
		Database: InfluxDatabase,
		Bucket:   InfluxDatabase + "/autogen",
		t:        t,
		bin:      InfluxdPath(t),
		dir:      dir,
		cfgPath:  filepath.Join(dir, "influxd.toml"),
		logPath:  filepath.Join(dir, "influxd.log"),
		client:   &http.Client{Timeout: 10 * time.Second},
		cq:       cq,
	}
	t.Cleanup(func() {
		i.stop()
		if t.Failed() {
			i.dumpLog()
		}
	})

	fixed := addr != ""
	var lastErr error
	for attempt := 0; attempt < influxStartAttempts; attempt++ {
		if !fixed {
			addr = FreeAddr(t)
		}
		i.addr = addr
		i.URL = "http://" + addr
		if err := i.writeConfig(); err != nil {
			t.Fatalf("start influxd: %v", err)
		}
		err := i.start()
		if err == nil {
			break
		}
		lastErr = err
		i.stop()
		if fixed || !errors.Is(err, errAddrInUse) {
			t.Fatalf("start influxd on %s: %v", addr, err)
		}
	}
	if lastErr != nil && i.running() == nil {
		t.Fatalf("start influxd: %d attempts failed, last: %v", influxStartAttempts, lastErr)
	}
	i.Exec(t, "CREATE DATABASE "+i.Database)
	return i
}

var errAddrInUse = errors.New("address already in use")

// writeConfig writes a config that keeps everything on 127.0.0.1 and in the
// temporary directory and turns off what only makes noise in tests. The RPC
// (backup) service binds port 0, so only the HTTP port has to be chosen.
func (i *Influx) writeConfig() error {
	cfg := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:0"

[meta]
  dir = %[1]q
  logging-enabled = false

[data]
  dir = %[2]q
  wal-dir = %[3]q
  query-log-enabled = false
  trace-logging-enabled = false

[retention]
  enabled = false

[shard-precreation]
  enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = %[5]t
  log-enabled = false
  run-interval = "1s"

[http]
  enabled = true
  bind-address = %[4]q
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false
  flux-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
`, filepath.Join(i.dir, "meta"), filepath.Join(i.dir, "data"), filepath.Join(i.dir, "wal"), i.addr, i.cq)
	if err := os.WriteFile(i.cfgPath, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("write influxd config %s: %w", i.cfgPath, err)
	}
	return nil
}

// start runs influxd and waits until /ping answers 204.
func (i *Influx) start() error {
	logf, err := os.OpenFile(i.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open influxd log: %w", err)
	}
	fmt.Fprintf(logf, "--- influxd run -config %s (http %s) at %s\n", i.cfgPath, i.addr, time.Now().Format(time.RFC3339Nano))

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, i.bin, "run", "-config", i.cfgPath)
	cmd.Dir = i.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = influxStopTimeout
	if err := cmd.Start(); err != nil {
		cancel()
		logf.Close()
		return fmt.Errorf("run %s: %w", i.bin, err)
	}
	p := &influxProc{cmd: cmd, cancel: cancel, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	i.mu.Lock()
	i.proc = p
	i.mu.Unlock()

	deadline := time.Now().Add(influxStartTimeout)
	for {
		select {
		case <-p.done:
			if bytes.Contains(i.readLog(), []byte("address already in use")) {
				return fmt.Errorf("influxd exited (%v): %w", p.err, errAddrInUse)
			}
			return fmt.Errorf("influxd exited before answering /ping: %v", p.err)
		default:
		}
		if i.ping() == nil {
			// Another test's server may have taken the port before ours
			// could bind it; ours then exits, but theirs answers /ping.
			mine, err := i.isMine()
			if err != nil {
				return err
			}
			if !mine {
				return fmt.Errorf("another influxd answers on %s: %w", i.addr, errAddrInUse)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("influxd did not answer /ping on %s within %s", i.addr, influxStartTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (i *Influx) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, i.URL+"/ping", nil)
	if err != nil {
		return err
	}
	resp, err := i.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("GET /ping: %s", resp.Status)
	}
	return nil
}

func (i *Influx) running() *influxProc {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.proc
}

// isMine reports whether the server answering on addr runs with our config
// file, which its /debug/vars shows in the command line.
func (i *Influx) isMine() (bool, error) {
	resp, err := i.client.Get(i.URL + "/debug/vars")
	if err != nil {
		return false, fmt.Errorf("GET /debug/vars: %w", err)
	}
	defer resp.Body.Close()
	var vars struct {
		Cmdline []string `json:"cmdline"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		return false, fmt.Errorf("decode /debug/vars: %w", err)
	}
	return slices.Contains(vars.Cmdline, i.cfgPath), nil
}

// stop terminates the running process, if any: SIGTERM, then SIGKILL after
// influxStopTimeout.
func (i *Influx) stop() {
	i.mu.Lock()
	p := i.proc
	i.proc = nil
	i.mu.Unlock()
	if p == nil {
		return
	}
	p.cancel()
	<-p.done
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s) and keeps its
// data for Restart. Clients see connection refused until then; the port is
// not held meanwhile.
func (i *Influx) Stop() {
	i.t.Helper()
	i.stop()
}

// Restart starts the server again on the same port with the same data, as
// after an outage. It stops it first if it is running.
func (i *Influx) Restart() {
	i.t.Helper()
	i.stop()
	var err error
	for attempt := 0; attempt < influxStartAttempts; attempt++ {
		if err = i.start(); err == nil {
			return
		}
		i.stop()
		if !errors.Is(err, errAddrInUse) {
			break
		}
		// The old listener may linger for a moment after the process exits.
		time.Sleep(200 * time.Millisecond)
	}
	i.t.Fatalf("restart influxd on %s: %v", i.addr, err)
}

func (i *Influx) readLog() []byte {
	b, _ := os.ReadFile(i.logPath)
	return b
}

func (i *Influx) dumpLog() {
	b := i.readLog()
	if len(b) > influxLogTail {
		b = b[len(b)-influxLogTail:]
	}
	i.t.Logf("influxd log (%s):\n%s", i.logPath, b)
}

// Series is one series of an InfluxQL result. Numbers stay json.Number so
// integers (and epoch=ns times) are exact.
type Series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// Column returns the index of the named column, or -1.
func (s Series) Column(name string) int {
	for i, c := range s.Columns {
		if c == name {
			return i
		}
	}
	return -1
}

type queryResponse struct {
	Results []struct {
		StatementID int      `json:"statement_id"`
		Series      []Series `json:"series"`
		Error       string   `json:"error"`
	} `json:"results"`
	Error string `json:"error"`
}

// Query runs one InfluxQL read statement against Database with epoch=ns and
// returns the series of its result (none when nothing matched). Any error
// fails the test.
func (i *Influx) Query(t testing.TB, q string) []Series {
	t.Helper()
	return i.do(t, http.MethodGet, q)
}

// Exec runs an InfluxQL statement that changes something (CREATE, DROP) with
// POST. Any error fails the test.
func (i *Influx) Exec(t testing.TB, q string) {
	t.Helper()
	i.do(t, http.MethodPost, q)
}

func (i *Influx) do(t testing.TB, method, q string) []Series {
	t.Helper()
	v := url.Values{"db": {i.Database}, "epoch": {"ns"}, "q": {q}}
	var req *http.Request
	var err error
	if method == http.MethodGet {
		req, err = http.NewRequest(method, i.URL+"/query?"+v.Encode(), nil)
	} else {
		req, err = http.NewRequest(method, i.URL+"/query", strings.NewReader(v.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		t.Fatalf("influx query %q: %v", q, err)
	}
	resp, err := i.client.Do(req)
	if err != nil {
		t.Fatalf("influx query %q: %v", q, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("influx query %q: read response: %v", q, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("influx query %q: %s: %s", q, resp.Status, body)
	}
	var r queryResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("influx query %q: decode %s: %v", q, body, err)
	}
	if r.Error != "" {
		t.Fatalf("influx query %q: %s", q, r.Error)
	}
	if len(r.Results) != 1 {
		t.Fatalf("influx query %q: %d results, want 1 (one statement per call): %s", q, len(r.Results), body)
	}
	if r.Results[0].Error != "" {
		t.Fatalf("influx query %q: %s", q, r.Results[0].Error)
	}
	return r.Results[0].Series
}
