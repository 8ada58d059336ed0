package api

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/testenv"
)

// TestChangesNeedTheToken: every POST needs the token, in constant time,
// from the header or the cookie, from this origin only.
func TestChangesNeedTheToken(t *testing.T) {
	d := startDesk(t, "s3cr3t-token")
	id := d.outage(t)
	etr := "/api/v1/outages/" + url.PathEscape(id) + "/etr"
	body := `{"etr":"2025-01-15T14:30:00Z"}`
	cookie := "feederd_token=s3cr3t-token"
	self := d.base
	tests := []struct {
		name string
		hdr  []string
		code int
		want string
	}{
		{"no token", nil, 401, `{"error":"missing or wrong token"}`},
		{"wrong token", []string{"Authorization", "Bearer s3cr3t-tokem"}, 401, `{"error":"missing or wrong token"}`},
		{"not bearer", []string{"Authorization", "Basic s3cr3t-token"}, 401, `{"error":"missing or wrong token"}`},
		{"wrong cookie", []string{"Cookie", "feederd_token=nope", "Origin", self}, 401, `{"error":"missing or wrong token"}`},
		{"foreign origin", []string{"Authorization", "Bearer s3cr3t-token", "Origin", "http://evil.example"}, 403,
			`{"error":"origin http://evil.example is not this server"}`},
		{"cookie without origin", []string{"Cookie", cookie}, 403, `{"error":"a change authenticated by cookie needs an Origin header"}`},
		{"cookie from another site", []string{"Cookie", cookie, "Origin", "http://127.0.0.1:1"}, 403, `{"error":"origin http://127.0.0.1:1 is not this server"}`},
		{"bearer", []string{"Authorization", "Bearer s3cr3t-token"}, 200, `"etr":"2025-01-15T14:30:00Z"`},
		{"cookie from the page", []string{"Cookie", cookie, "Origin", self}, 200, `"etr":"2025-01-15T14:30:00Z"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, got := d.do(t, "POST", etr, body, append(tc.hdr, "Content-Type", "application/json")...)
			if code != tc.code || !strings.Contains(compactJSON(t, got), tc.want) {
				t.Errorf("%d %s, want %d %s", code, got, tc.code, tc.want)
			}
		})
	}
	auth := []string{"Authorization", "Bearer s3cr3t-token", "Content-Type", "application/json"}
	for _, tc := range []struct{ path, body, want string }{
		{etr, `{"etr":"half past two"}`, `{"error":"etr \"half past two\" is not an RFC 3339 time (2025-01-15T14:30:00Z)"}`},
		{etr, `{"eta":"2025-01-15T14:30:00Z"}`, `{"error":"bad request body: json: unknown field \"eta\""}`},
		{etr, `not json`, `{"error":"bad request body: invalid character 'o' in literal null (expecting 'u')"}`},
		{"/api/v1/outages/" + url.PathEscape(id) + "/ack", `{"by":""}`, `{"error":"by: the agent's name, 1 to 64 characters"}`},
	} {
		if code, got := d.do(t, "POST", tc.path, tc.body, auth...); code != 400 || compactJSON(t, got) != tc.want {
			t.Errorf("POST %s: %d %s, want 400 %s", tc.body, code, got, tc.want)
		}
	}
	// Reading stays open on loopback; a GET changes nothing.
	if code, _ := d.do(t, "GET", etr, ""); code != 405 {
		t.Errorf("GET on the ETR endpoint: %d, want 405", code)
	}
	d.restore(t)
	if code, got := d.do(t, "POST", etr, body, auth...); code != 409 || compactJSON(t, got) != `{"error":"outage \"`+id+`\" is over"}` {
		t.Errorf("ETR on a restored outage: %d %s", code, got)
	}
	if code, got := d.do(t, "POST", "/api/v1/outages/F0%2Fx%2F1/etr", body, auth...); code != 404 || compactJSON(t, got) != `{"error":"no active outage \"F0/x/1\""}` {
		t.Errorf("ETR on an unknown outage: %d %s", code, got)
	}
}

// TestChangesWithoutATokenConfigured: with no token, no change is possible.
func TestChangesWithoutATokenConfigured(t *testing.T) {
	d := startDesk(t, "")
	id := d.outage(t)
	code, got := d.do(t, "POST", "/api/v1/outages/"+url.PathEscape(id)+"/ack", `{"by":"ana"}`, "Authorization", "Bearer ")
	if code != 403 || compactJSON(t, got) != `{"error":"changes need a token: set http.token_file or http.token_env"}` {
		t.Errorf("%d %s", code, got)
	}
}

// TestReadsNeedTheTokenOffLoopback: on a non-loopback address the page and
// the API need the token; the login form sets the cookie; probes stay open.
func TestReadsNeedTheTokenOffLoopback(t *testing.T) {
	d := startDesk(t, "s3cr3t-token")
	// Tests listen on 127.0.0.1 only: take the non-loopback rule as New
	// would set it for 0.0.0.0.
	d.srv.readsNeedToken = true
	for _, p := range []string{"/api/v1/feeders", "/api/v1/outages", "/api/v1/devices", "/api/v1/events", "/api/v1/reliability", "/api/v1/stream", "/api/v1/openapi.json"} {
		code, got := d.do(t, "GET", p, "")
		if code != 401 || compactJSON(t, got) != `{"error":"missing or wrong token"}` {
			t.Errorf("GET %s without token: %d %s", p, code, got)
		}
		if p == "/api/v1/stream" {
			continue // it would not end; TestStream* read it
		}
		if code, _ := d.do(t, "GET", p+"?limit=1", "", "Authorization", "Bearer s3cr3t-token"); code != 200 {
			t.Errorf("GET %s with the token: %d", p, code)
		}
	}
	code, page := d.do(t, "GET", "/", "")
	if code != 401 || !strings.Contains(page, `<form method="post" action="/login">`) || strings.Contains(page, "s3cr3t") {
		t.Errorf("page without token: %d %s", code, page)
	}
	for _, p := range []string{"/metrics", "/healthz", "/assets/desk.css"} {
		if code, _ := d.do(t, "GET", p, ""); code != 200 {
			t.Errorf("GET %s: %d, want 200 without a token", p, code)
		}
	}
	form := "token=s3cr3t-token"
	ct := "application/x-www-form-urlencoded"
	if code, _ := d.do(t, "POST", "/login", form, "Content-Type", ct, "Origin", "http://evil.example"); code != 403 {
		t.Errorf("login from another origin: %d", code)
	}
	if code, _ := d.do(t, "POST", "/login", "token=wrong", "Content-Type", ct, "Origin", d.base); code != 401 {
		t.Errorf("login with a wrong token: %d", code)
	}
	req, _ := http.NewRequest("POST", d.base+"/login", strings.NewReader(form))
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Origin", d.base)
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	set := resp.Header.Get("Set-Cookie")
	if resp.StatusCode != 303 || set != "feederd_token=s3cr3t-token; Path=/; HttpOnly; SameSite=Strict" {
		t.Errorf("login: %d %q", resp.StatusCode, set)
	}
	if code, page := d.do(t, "GET", "/", "", "Cookie", "feederd_token=s3cr3t-token"); code != 200 || !strings.Contains(page, "<h1>feederd service desk</h1>") {
		t.Errorf("page with the cookie: %d", code)
	}
}

// TestRefusesPublicListenWithoutToken: New will not serve the desk off
// loopback without a token, and says why.
func TestRefusesPublicListenWithoutToken(t *testing.T) {
	for _, tc := range []struct {
		listen string
		ok     bool
	}{{"0.0.0.0:0", false}, {":0", false}, {"[::]:0", false}, {"127.0.0.1:0", true}, {"localhost:0", true}} {
		s, err := New(Options{Listen: tc.listen, Gatherer: prometheus.NewRegistry(), Logger: slog.Default()})
		if tc.ok {
			if err != nil {
				t.Errorf("%s: %v", tc.listen, err)
			} else {
				s.ln.Close()
			}
			continue
		}
		want := "http server: listen address " + tc.listen + " is not loopback: set a token (http.token_file or http.token_env) to serve the desk there"
		if err == nil || err.Error() != want {
			t.Errorf("%s: err %v, want %s", tc.listen, err, want)
		}
	}
}

// TestTLS serves the desk over HTTPS with the configured certificate.
func TestTLS(t *testing.T) {
	ca, cert, key, _, _ := testenv.TestPKI(t)
	d := startDesk(t, "tok", func(o *Options, _ *LiveOptions) { o.TLSCert, o.TLSKey = cert, key })
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(d.base + "/api/v1/feeders")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(compactJSON(t, string(b)), `{"feeders":[{"id":"F0"`) {
		t.Errorf("%d %s", resp.StatusCode, b)
	}
	if _, err := http.Get("http://" + d.srv.Addr() + "/api/v1/feeders"); err == nil {
		// Plain HTTP to a TLS port gets a 400 from net/http, not data.
		resp, _ := http.Get("http://" + d.srv.Addr() + "/api/v1/feeders")
		if resp != nil && resp.StatusCode == 200 {
			t.Error("plain HTTP answered 200 on the TLS port")
		}
	}
	_, err = New(Options{Listen: "127.0.0.1:0", Gatherer: prometheus.NewRegistry(), Logger: slog.Default(), TLSCert: cert})
	if err == nil || err.Error() != "http server: TLS needs both a certificate and a key file" {
		t.Errorf("half TLS: %v", err)
	}
}

// TestTokenNeverLogged: the token does not appear in the log.
func TestTokenNeverLogged(t *testing.T) {
	var logs strings.Builder
	d := startDesk(t, "s3cr3t-token", func(o *Options, _ *LiveOptions) {
		o.Logger = slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	id := d.outage(t)
	d.ackAs(t, id, "ana")
	d.do(t, "POST", "/login", "token=s3cr3t-token", "Content-Type", "application/x-www-form-urlencoded", "Origin", d.base)
	d.do(t, "POST", "/api/v1/outages/x/ack", `{"by":"x"}`, "Authorization", "Bearer s3cr3t-tokem")
	got := logs.String() // the server has stopped writing: every request returned
	if !strings.Contains(got, "outage acknowledged") || strings.Contains(got, "s3cr3t") {
		t.Errorf("log:\n%s", got)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
