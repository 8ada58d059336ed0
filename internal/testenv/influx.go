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
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// InfluxDatabase is the database StartInflux creates.
const InfluxDatabase = "feederd"

const (
	influxLogTail = 64 << 10
)

// Influx is a running InfluxDB 1.8 server owned by one test.
type Influx struct {
	// URL is the server's base URL, http://127.0.0.1:port.
	URL string
	// Database is the database created at start ("feederd").
	Database string
	// Bucket is Database/autogen, as the v2 compatibility API names it.
	Bucket string

	server
	cfgPath string
	client  *http.Client
	// cq turns InfluxDB's continuous-query service on (StartInfluxWithCQ).
	cq bool
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
		server: server{
			t:       t,
			name:    "influxd",
			bin:     InfluxdPath(t),
			dir:     dir,
			logPath: filepath.Join(dir, "influxd.log"),
		},
		cfgPath: filepath.Join(dir, "influxd.toml"),
		client:  &http.Client{Timeout: 10 * time.Second},
		cq:      cq,
	}
	i.args = func() []string { return []string{"run", "-config", i.cfgPath} }
	i.ready = i.ping
	i.isMine = i.configIsMine
	t.Cleanup(func() {
		i.stop()
		if t.Failed() {
			i.dumpLog()
		}
	})

	i.startOnFreePort(addr, func() error {
		i.URL = "http://" + i.addr
		return i.writeConfig()
	})
	i.Exec(t, "CREATE DATABASE "+i.Database)
	return i
}

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

// configIsMine reports whether the server answering on addr runs with our
// config file, which its /debug/vars shows in the command line.
func (i *Influx) configIsMine() (bool, error) {
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
