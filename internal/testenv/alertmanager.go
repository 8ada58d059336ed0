package testenv

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	amLogTail = 64 << 10
)

// Alertmanager is a running Prometheus Alertmanager owned by one test, with
// clustering off, its storage in the test's temporary directory, and one
// route: every alert its own group (group_by: ['...'], group_wait 100ms,
// group_interval 500ms) to a webhook receiver served by the test process,
// with send_resolved, so that tests also see what Alertmanager notifies
// (Notifications), resolved alerts included.
type Alertmanager struct {
	// URL is the base URL, http://127.0.0.1:port.
	URL string

	server
	cfgPath  string
	receiver string
	client   *http.Client

	// mu guards what the webhook receiver records.
	mu            sync.Mutex
	notifications []AMNotification
	hook          *http.Server
}

// AMAlert is an alert as GET /api/v2/alerts returns it.
type AMAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	UpdatedAt    time.Time         `json:"updatedAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
	Status       struct {
		State string `json:"state"`
	} `json:"status"`
}

// AMNotification is one webhook notification Alertmanager sent.
type AMNotification struct {
	Status string `json:"status"`
	Alerts []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
		EndsAt      time.Time         `json:"endsAt"`
		Fingerprint string            `json:"fingerprint"`
	} `json:"alerts"`
	// Received is when the test process got it.
	Received time.Time `json:"-"`
}

// StartAlertmanager starts Alertmanager on a free port of 127.0.0.1. It is
// stopped when the test ends; its log is printed if the test failed.
func StartAlertmanager(t testing.TB) *Alertmanager {
	t.Helper()
	dir := t.TempDir()
	a := &Alertmanager{
		server: server{
			t:       t,
			name:    "alertmanager",
			bin:     AlertmanagerPath(t),
			dir:     dir,
			logPath: filepath.Join(dir, "alertmanager.log"),
		},
		cfgPath:  filepath.Join(dir, "alertmanager.yml"),
		receiver: "testenv-" + filepath.Base(dir),
		client:   &http.Client{Timeout: 10 * time.Second},
	}
	a.args = func() []string {
		return []string{
			"--config.file=" + a.cfgPath,
			"--storage.path=" + filepath.Join(a.dir, "data"),
			"--web.listen-address=" + a.addr,
			"--cluster.listen-address=",
			"--log.level=info",
		}
	}
	a.ready = a.readyz
	a.isMine = a.statusIsMine
	t.Cleanup(func() {
		a.stop()
		a.mu.Lock()
		hook := a.hook
		a.mu.Unlock()
		if hook != nil {
			_ = hook.Close()
		}
		if t.Failed() {
			a.dumpLog()
		}
	})
	hookURL := a.serveHook(t)
	a.startOnFreePort("", func() error {
		a.URL = "http://" + a.addr
		return a.writeConfig(hookURL)
	})
	return a
}

// AlertmanagerPath returns the alertmanager binary: $FEEDERD_ALERTMANAGER,
// else bin/alertmanager in the module root. It fails the test with the
// build command if missing.
func AlertmanagerPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("FEEDERD_ALERTMANAGER"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("FEEDERD_ALERTMANAGER=%s: %v", p, err)
		}
		return p
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("locate alertmanager: %v", err)
	}
	p := filepath.Join(root, "bin", "alertmanager")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("alertmanager not found at %s: build it with `make -C %s tools` "+
			"(that is `GOBIN=%s go install github.com/prometheus/alertmanager/cmd/alertmanager@v0.28.1`, "+
			"about 30 s) or point FEEDERD_ALERTMANAGER at an alertmanager binary", p, root, filepath.Join(root, "bin"))
	}
	return p
}

// AmtoolPath returns Alertmanager's amtool: $FEEDERD_AMTOOL, else
// bin/amtool in the module root. It fails the test with the build command
// if missing.
func AmtoolPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("FEEDERD_AMTOOL"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("FEEDERD_AMTOOL=%s: %v", p, err)
		}
		return p
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("locate amtool: %v", err)
	}
	p := filepath.Join(root, "bin", "amtool")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("amtool not found at %s: build it with `make -C %s tools` "+
			"(that is `GOBIN=%s go install github.com/prometheus/alertmanager/cmd/amtool@v0.28.1`) "+
			"or point FEEDERD_AMTOOL at an amtool binary", p, root, filepath.Join(root, "bin"))
	}
	return p
}

// serveHook starts the receiver of Alertmanager's notifications.
func (a *Alertmanager) serveHook(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for alertmanager notifications: %v", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n AMNotification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n.Received = time.Now()
		a.mu.Lock()
		a.notifications = append(a.notifications, n)
		a.mu.Unlock()
	})}
	a.hook = srv
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/notify"
}

func (a *Alertmanager) writeConfig(hookURL string) error {
	cfg := fmt.Sprintf(`route:
  receiver: %[1]s
  group_by: ['...']
  group_wait: 100ms
  group_interval: 500ms
  repeat_interval: 1h
receivers:
  - name: %[1]s
    webhook_configs:
      - url: %[2]s
        send_resolved: true
`, a.receiver, hookURL)
	if err := os.WriteFile(a.cfgPath, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("write alertmanager config %s: %w", a.cfgPath, err)
	}
	return nil
}

// readyz reports whether the server answers /-/ready.
func (a *Alertmanager) readyz() error {
	resp, err := a.client.Get(a.URL + "/-/ready")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /-/ready: %s", resp.Status)
	}
	return nil
}

// statusIsMine reports whether the server on addr runs our configuration: its
// status shows the receiver's name, which holds our temporary directory's.
func (a *Alertmanager) statusIsMine() (bool, error) {
	resp, err := a.client.Get(a.URL + "/api/v2/status")
	if err != nil {
		return false, fmt.Errorf("GET /api/v2/status: %w", err)
	}
	defer resp.Body.Close()
	var st struct {
		Config struct {
			Original string `json:"original"`
		} `json:"config"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return false, fmt.Errorf("decode /api/v2/status: %w", err)
	}
	return strings.Contains(st.Config.Original, a.receiver), nil
}

func (a *Alertmanager) dumpLog() {
	b, _ := os.ReadFile(a.logPath)
	if len(b) > amLogTail {
		b = b[len(b)-amLogTail:]
	}
	a.t.Logf("alertmanager log (%s):\n%s", a.logPath, b)
}

// Alerts returns what GET /api/v2/alerts lists: the alerts that have not
// ended (Alertmanager leaves out an alert once its endsAt has passed).
// filter holds matchers such as `alertname="RTUCommsLost"`. Any error
// fails the test.
func (a *Alertmanager) Alerts(t testing.TB, filter ...string) []AMAlert {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.URL+"/api/v2/alerts", nil)
	if err != nil {
		t.Fatalf("alertmanager alerts: %v", err)
	}
	q := req.URL.Query()
	for _, f := range filter {
		q.Add("filter", f)
	}
	req.URL.RawQuery = q.Encode()
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatalf("alertmanager alerts: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("alertmanager alerts: read: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v2/alerts: %s: %s", resp.Status, body)
	}
	var out []AMAlert
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("GET /api/v2/alerts: decode %s: %v", body, err)
	}
	return out
}

// Notifications returns every notification Alertmanager has sent so far,
// in the order they arrived.
func (a *Alertmanager) Notifications() []AMNotification {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]AMNotification, len(a.notifications))
	copy(out, a.notifications)
	return out
}
