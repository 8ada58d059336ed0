package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/config"
)

// TestReloadEndpoint: who may reload, and what the answers say.
func TestReloadEndpoint(t *testing.T) {
	fail := false
	calls := 0
	reload := func(context.Context) (any, error) {
		calls++
		if fail {
			return nil, fmt.Errorf("reload refused: %w", errors.New("a.yaml:3: links[0].urll: unknown key (did you mean url?)\na.yaml:9: devices[1].unit: 300 is out of range 1..247"))
		}
		return map[string][]string{"devices_added": {"D9"}}, nil
	}
	for _, tc := range []struct {
		name, token, remote, auth, origin string
		fail                              bool
		code                              int
		body                              string
		called                            bool
	}{
		{name: "loopback without token", remote: "127.0.0.1:4000", code: 200, body: `{"devices_added":["D9"]}`, called: true},
		{name: "ipv6 loopback", remote: "[::1]:4000", code: 200, body: `{"devices_added":["D9"]}`, called: true},
		{name: "invalid file", remote: "127.0.0.1:4000", fail: true, code: 400, called: true,
			body: `{"error":"reload refused: a.yaml:3: links[0].urll: unknown key (did you mean url?)\na.yaml:9: devices[1].unit: 300 is out of range 1..247",` +
				`"errors":["a.yaml:3: links[0].urll: unknown key (did you mean url?)","a.yaml:9: devices[1].unit: 300 is out of range 1..247"]}`},
		{name: "remote without token configured", remote: "192.0.2.7:4000", code: 403,
			body: `{"error":"a reload from another host needs a token: set http.token_file or http.token_env"}`},
		{name: "remote without token", token: "s3cret", remote: "192.0.2.7:4000", code: 401, body: `{"error":"missing or wrong token"}`},
		{name: "remote with token", token: "s3cret", remote: "192.0.2.7:4000", auth: "Bearer s3cret", code: 200, body: `{"devices_added":["D9"]}`, called: true},
		{name: "loopback with a wrong token", token: "s3cret", remote: "127.0.0.1:4000", auth: "Bearer nope", code: 401, body: `{"error":"missing or wrong token"}`},
		{name: "another origin", remote: "127.0.0.1:4000", origin: "http://evil.example", code: 403, body: `{"error":"origin http://evil.example is not this server"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fail, calls = tc.fail, 0
			s, err := New(Options{Listen: "127.0.0.1:0", Gatherer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler),
				Token: config.NewSecret(tc.token), Reload: reload})
			if err != nil {
				t.Fatal(err)
			}
			defer s.ln.Close()
			req := httptest.NewRequest("POST", "http://127.0.0.1:9108/-/reload", nil)
			req.RemoteAddr = tc.remote
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			w := httptest.NewRecorder()
			s.srv.Handler.ServeHTTP(w, req)
			body, _ := io.ReadAll(w.Result().Body)
			var compact strings.Builder
			if err := json.NewEncoder(&compact).Encode(json.RawMessage(body)); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			got := strings.TrimSpace(strings.Join(strings.Fields(compact.String()), ""))
			want := strings.Join(strings.Fields(tc.body), "")
			if w.Code != tc.code || got != want {
				t.Fatalf("POST /-/reload = %d %s, want %d %s", w.Code, got, tc.code, want)
			}
			if (calls == 1) != tc.called {
				t.Fatalf("reload called %d times", calls)
			}
			w = httptest.NewRecorder()
			s.srv.Handler.ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1:9108/", nil))
			if idx := w.Body.String(); !strings.HasSuffix(idx, "\nPOST /-/reload  reload the configuration\n") {
				t.Fatalf("/ does not list POST /-/reload:\n%s", idx)
			}
		})
	}
	// Without Options.Reload there is no endpoint, and / does not list it.
	base, _ := start(t, nil)
	if _, idx := get(t, base+"/"); strings.Contains(idx, "reload") {
		t.Fatalf("/ lists a reload without a reloader:\n%s", idx)
	}
	resp, err := http.Post(base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("POST /-/reload without a reloader = %d, want 404", resp.StatusCode)
	}
}

// TestDeskFollowsModel: after SetModel the desk lists the new model's
// devices, and the live view's voltage history follows its devices to
// their new indexes.
func TestDeskFollowsModel(t *testing.T) {
	d := startDesk(t, "")
	m := deskModel()
	m.Devices[0], m.Devices[1] = m.Devices[1], m.Devices[0]
	m.Devices[0].Index, m.Devices[1].Index = 0, 1
	d.srv.SetModel(m)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.live.SetModel(ctx, m); err != nil {
		t.Fatal(err)
	}
	var b struct {
		Devices []DeviceView `json:"devices"`
	}
	if err := d.getJSON("/api/v1/devices", &b); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range b.Devices {
		ids = append(ids, v.ID)
	}
	if want := []string{"F0-D1", "F0-D0"}; !slices.Equal(ids, want) {
		t.Fatalf("devices after SetModel = %q, want %q", ids, want)
	}

	nan := float32(math.NaN())
	frames := []*voltFrame{{t: 1, pu: []float32{0.99, 1.01}}, {t: 2, pu: []float32{0.98, nan}}}
	added := deskModel()
	added.Devices = []*config.Device{added.Devices[1], {ID: "NEW"}, added.Devices[0]}
	got := remapFrames(frames, deskModel(), added)
	want := [][]float32{{1.01, nan, 0.99}, {nan, nan, 0.98}}
	for k, f := range got {
		if f.t != frames[k].t || !slices.EqualFunc(f.pu, want[k], func(a, b float32) bool {
			return a == b || (math.IsNaN(float64(a)) && math.IsNaN(float64(b)))
		}) {
			t.Fatalf("frame %d remapped to %v at %d, want %v", k, f.pu, f.t, want[k])
		}
	}
	if frames[0].pu[0] != 0.99 {
		t.Fatal("remapFrames changed a published frame")
	}
}
