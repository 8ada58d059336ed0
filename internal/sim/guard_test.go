package sim

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestControlAPIRefusals sends a running rtusim, with a token, the requests
// a browser page or a rebound DNS name could send, and the right ones.
func TestControlAPIRefusals(t *testing.T) {
	_, base, _ := controlRunWith(t, ControlOptions{Token: "s3cret", Hosts: []string{"rtusim"}})
	host := strings.TrimPrefix(base, "http://")
	const event = `{"action":"comms_loss","target":"F2-BRK"}`
	auth := "Bearer s3cret"
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		body    string
		headers map[string]string
		status  int
		want    string // the error, or a part of the answer
	}{
		{"healthz needs no token", "GET", "/healthz", "", nil, 200, "ok"},
		{"no token", "GET", "/api/clock", "", nil, 401, "missing or wrong bearer token"},
		{"wrong token", "GET", "/api/clock", "", map[string]string{"Authorization": "Bearer s3cre"}, 401, "missing or wrong bearer token"},
		{"token", "GET", "/api/clock", "", map[string]string{"Authorization": auth}, 200, `"paused": false`},
		{"text/plain post", "POST", "/api/events", event,
			map[string]string{"Authorization": auth, "Content-Type": "text/plain"}, 415, `content type \"text/plain\": want application/json`},
		{"form post", "POST", "/api/pause", "",
			map[string]string{"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}, 415, `content type \"application/x-www-form-urlencoded\": want application/json`},
		{"post without a content type", "POST", "/api/pause", "", map[string]string{"Authorization": auth}, 415, `content type \"\": want application/json`},
		{"scenario as text/plain", "POST", "/api/scenario", "events: []\n",
			map[string]string{"Authorization": auth, "Content-Type": "text/plain"}, 415, `content type \"text/plain\": want application/yaml or application/json`},
		{"cross-origin", "POST", "/api/events", event,
			map[string]string{"Authorization": auth, "Content-Type": "application/json", "Origin": "http://evil.example"}, 403, `cross-origin request from \"http://evil.example\" refused`},
		{"cross-site fetch", "GET", "/api/devices", "",
			map[string]string{"Authorization": auth, "Sec-Fetch-Site": "cross-site"}, 403, "cross-origin request (Sec-Fetch-Site: cross-site) refused"},
		{"rebound DNS name", "GET", "/api/clock", "",
			map[string]string{"Authorization": auth, "Host": "evil.example:80"}, 421, `host \"evil.example:80\" is not an IP address, localhost or an allowed host name (-allow-host)`},
		{"localhost", "GET", "/api/clock", "", map[string]string{"Authorization": auth, "Host": "localhost:1"}, 200, `"paused": false`},
		{"allowed name", "GET", "/api/clock", "", map[string]string{"Authorization": auth, "Host": "rtusim"}, 200, `"paused": false`},
		{"same origin json", "POST", "/api/events", event,
			map[string]string{"Authorization": auth, "Content-Type": "application/json; charset=utf-8", "Origin": "http://" + host}, 200, `"action": "comms_loss"`},
		{"scenario yaml", "POST", "/api/scenario", "events:\n  - {at: 1s, action: comms_restore, target: F2-BRK}\n",
			map[string]string{"Authorization": auth, "Content-Type": "application/yaml"}, 200, `"events": 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			if h := tc.headers["Host"]; h != "" {
				req.Host = h
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, tc.status, b)
			}
			if tc.status >= 400 {
				want := "{\n  \"error\": \"" + tc.want + "\"\n}\n"
				if string(b) != want {
					t.Errorf("body:\n%s\nwant:\n%s", b, want)
				}
			} else if !strings.Contains(string(b), tc.want) {
				t.Errorf("body %s does not contain %s", b, tc.want)
			}
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") != `Bearer realm="rtusim"` {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}
