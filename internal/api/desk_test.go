package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/pipeline"
	"github.com/feederd/feederd/internal/poll"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/ring"
	"github.com/feederd/feederd/internal/sample"
	"github.com/feederd/feederd/internal/topology"
)

var meterProfile = &profile.Profile{Name: "meter", Points: []profile.Point{
	{Name: "va", Type: profile.Float32, Role: profile.RoleVoltageA, Unit: "V"},
	{Name: "vb", Type: profile.Float32, Role: profile.RoleVoltageB, Unit: "V", Address: 2},
	{Name: "vc", Type: profile.Float32, Role: profile.RoleVoltageC, Unit: "V", Address: 4},
}}

// deskModel is one feeder F0 of two meters, F0-D0 above F0-D1, each
// feeding a section: S1 (100 customers, a hospital) and S2 (200).
func deskModel() *config.Model {
	m := &config.Model{Detect: detect.DefaultParams()}
	link := &config.Link{ID: "l0"}
	for i := range 2 {
		d := &config.Device{Index: uint32(i), ID: fmt.Sprintf("F0-D%d", i), Feeder: "F0", Link: link, Unit: 1,
			Kind: config.KindMeter, Profile: meterProfile, Points: meterProfile.Points, Interval: time.Second,
			NominalVoltage: 120, PTRatio: 1}
		if i > 0 {
			d.Upstream = "F0-D0"
		}
		m.Devices = append(m.Devices, d)
		link.Devices = append(link.Devices, d)
	}
	m.Links = []*config.Link{link}
	c1, c2 := 100, 200
	top, err := topology.New(topology.Spec{Noun: "device",
		Nodes: []topology.NodeSpec{{ID: "F0-D0", Feeder: "F0", Kind: topology.KindMeter}, {ID: "F0-D1", Feeder: "F0", Kind: topology.KindMeter, Upstream: "F0-D0"}},
		Feeders: []topology.FeederSpec{{ID: "F0", Sections: []topology.SectionSpec{
			{ID: "S1", FedBy: "F0-D0", Customers: &c1, Critical: []topology.CriticalCustomer{{Name: "Mercy Hospital", Kind: topology.CriticalHospital}}},
			{ID: "S2", FedBy: "F0-D1", Customers: &c2},
		}}}})
	if err != nil {
		panic(err) // a fixed, valid spec
	}
	m.Topology = top
	return m
}

// deskTable is the pipeline's view of deskModel (internal/app builds it
// from a configuration; this package cannot import app): every meter reads
// three float32 voltages, F0-D1 sits below F0-D0, nothing is encoded.
func deskTable(m *config.Model) pipeline.Table {
	t := pipeline.Table{Topology: m.Topology, Detect: m.Detect}
	for i, d := range m.Devices {
		di := detect.DeviceInfo{Index: d.Index, ID: d.ID, Feeder: d.Feeder, Upstream: i - 1, Nominal: d.NominalVoltage,
			PTRatio: d.PTRatio, Interval: d.Interval}
		for _, p := range d.Points {
			di.PointRoles = append(di.PointRoles, p.Role)
		}
		t.Devices = append(t.Devices, pipeline.Device{DeviceInfo: di, Float32: [3]bool{true, true, true}})
	}
	return t
}

// desk is a running pipeline, live view and server over deskModel, fed
// synthetic polls on a synthetic clock.
type desk struct {
	base  string
	srv   *Server
	pipe  *pipeline.Pipeline
	live  *Live
	now   atomic.Int64
	seq   uint32
	token string
}

type deskOpt func(*Options, *LiveOptions)

func startDesk(t *testing.T, token string, mods ...deskOpt) *desk {
	t.Helper()
	d := &desk{token: token}
	d.now.Store(time.Date(2025, 1, 15, 12, 0, 0, 0, time.UTC).UnixNano())
	now := func() int64 { return d.now.Load() }
	m := deskModel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	lo := LiveOptions{Model: m, Logger: log, Now: now, Tick: 10 * time.Millisecond, HistoryStep: 20 * time.Millisecond}
	opts := Options{Listen: "127.0.0.1:0", Gatherer: prometheus.NewRegistry(), Logger: log, Model: m,
		Token: config.NewSecret(token), ShutdownTimeout: 5 * time.Second}
	for _, f := range mods {
		f(&opts, &lo)
	}
	d.live = NewLive(lo)
	pipe, err := pipeline.New(pipeline.Options{Table: deskTable(m), Logger: log, Registerer: prometheus.NewRegistry(), Shards: 1,
		RingSize: 1024, Policy: ring.DropNewest, TickEvery: 10 * time.Millisecond, Now: now, OnOutage: d.live.Outage})
	if err != nil {
		t.Fatal(err)
	}
	d.pipe = pipe
	opts.Source, opts.Live = pipe, d.live
	opts.Polls = func() []poll.DeviceStatus {
		// What the poller reports after a good poll of each meter.
		out := make([]poll.DeviceStatus, len(m.Devices))
		for i, dv := range m.Devices {
			out[i] = poll.DeviceStatus{ID: dv.ID, Link: "l0", Up: true, LastPoll: time.Unix(0, now()), LastGood: time.Unix(0, now()),
				Latency: 12 * time.Millisecond, Qualities: []sample.Quality{sample.Good, sample.Good, sample.Stale}}
		}
		return out
	}
	d.srv, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	scheme := "http://"
	if opts.TLSCert != "" {
		scheme = "https://"
	}
	d.base = scheme + d.srv.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	sub := pipe.Events().Subscribe(4096)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); _ = pipe.Run(ctx) }()
	go func() { defer wg.Done(); _ = d.live.Run(context.Background(), sub.C, pipe) }()
	go func() { defer wg.Done(); _ = d.srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("desk did not stop within 10s")
		}
	})
	return d
}

// poll feeds one poll of every meter at the given phase voltages (V).
func (d *desk) poll(volts ...float64) {
	d.seq++
	t := d.now.Add(int64(time.Second))
	for dev, v := range volts {
		d.pipe.Put([]sample.Sample{
			{Time: t, Device: uint32(dev), Point: 0, Value: v, Seq: d.seq},
			{Time: t, Device: uint32(dev), Point: 1, Value: v, Seq: d.seq},
			{Time: t, Device: uint32(dev), Point: 2, Value: v, Seq: d.seq},
			{Time: t, Device: uint32(dev), Point: sample.NoPoint, Value: 1, Seq: d.seq, Flags: sample.DeviceStatus | sample.EndOfPoll},
		})
	}
}

// outage brings F0 down (both meters read 0 V after reading 120 V) and
// waits for the outage; it returns its ID.
func (d *desk) outage(t *testing.T) string {
	t.Helper()
	d.poll(120, 120)
	d.poll(120, 120)
	d.poll(0, 0)
	var id string
	waitFor(t, "the outage on the desk", func() error {
		var b OutagesView
		if err := d.getJSON("/api/v1/outages", &b); err != nil {
			return err
		}
		if len(b.Active) != 1 || b.Active[0].CustomersOut != 300 {
			return fmt.Errorf("active outages %+v", b.Active)
		}
		id = b.Active[0].ID
		// The pipeline publishes device states on its own tick.
		var f FeederView
		if err := d.getJSON("/api/v1/feeders/F0", &f); err != nil {
			return err
		}
		if f.Devices[0].Energy != "de_energized" || f.Devices[1].Energy != "de_energized" {
			return fmt.Errorf("devices %+v", f.Devices)
		}
		var v VoltageView
		if err := d.getJSON("/api/v1/feeders/F0/voltage", &v); err != nil {
			return err
		}
		if len(v.Series) != 2 {
			return fmt.Errorf("voltage series %+v", v.Series)
		}
		return nil
	})
	return id
}

func (d *desk) restore(t *testing.T) {
	t.Helper()
	d.poll(120, 120)
	waitFor(t, "the outage restored", func() error {
		var b OutagesView
		if err := d.getJSON("/api/v1/outages", &b); err != nil {
			return err
		}
		if len(b.Active) != 0 || len(b.Recent) != 1 {
			return fmt.Errorf("%d active, %d recent", len(b.Active), len(b.Recent))
		}
		return nil
	})
}

func waitFor(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (d *desk) getJSON(path string, v any) error {
	resp, err := http.Get(d.base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// do sends a request and returns the status and body.
func (d *desk) do(t *testing.T, method, path, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, d.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAPIReadEndpoints(t *testing.T) {
	d := startDesk(t, "")
	id := d.outage(t)
	if want := fmt.Sprintf("F0/F0-D0/%d", time.Date(2025, 1, 15, 12, 0, 3, 0, time.UTC).UnixMilli()); id != want {
		t.Fatalf("outage id %q, want %q", id, want)
	}
	esc := url.PathEscape(id)
	tests := []struct {
		path string
		code int
		// want: substrings of the compact JSON answer, in order.
		want []string
	}{
		{"/api/v1/feeders", 200, []string{`{"feeders":[{"id":"F0","state":"outage","customers_served":300,"customers_out":300,`,
			`"sections":[{"id":"S1","fed_by":"F0-D0","customers":100,"energized":false,"critical":[{"name":"Mercy Hospital","kind":"hospital"}]},{"id":"S2","fed_by":"F0-D1","customers":200,"energized":false,"critical":[]}]`,
			`"devices":[{"id":"F0-D0","kind":"meter","upstream":"","comm":"ok","energy":"de_energized","open":false,"lockout":false,"voltage_pu":{"a":0,"b":0,"c":0}}`,
			`"outages":["` + id + `"],"bands":{"range_a":{"low":0.95,"high":1.05},"range_b":{"low":0.9167,"high":1.0583}}}]}`}},
		{"/api/v1/feeders/F0", 200, []string{`{"id":"F0","state":"outage"`}},
		{"/api/v1/feeders/F9", 404, []string{`{"error":"unknown feeder \"F9\""}`}},
		{"/api/v1/feeders/F0/voltage", 200, []string{`{"feeder":"F0","step_seconds":0.02,"bands":{`, `"series":[{"device":"F0-D0","points":[{"t":`}},
		{"/api/v1/feeders/F9/voltage", 404, []string{`{"error":"unknown feeder \"F9\""}`}},
		{"/api/v1/outages", 200, []string{`{"active":[{"id":"` + id + `","feeder":"F0","device":"F0-D0","status":"predicted","start":"2025-01-15T12:00:03Z",`,
			`"customers_affected":300,"customers_out":300,"customers_restored":0,"critical":[{"name":"Mercy Hospital","kind":"hospital"}],"sections":["S1","S2"],"devices":["F0-D0","F0-D1"],"comm_lost":[],"sustained":false,"steps":[]}],"recent":[]}`}},
		{"/api/v1/outages?feeder=F9", 400, []string{`{"error":"unknown feeder \"F9\""}`}},
		{"/api/v1/outages/" + esc, 200, []string{`{"id":"` + id + `","feeder":"F0"`}},
		{"/api/v1/outages/F0%2Fnope", 404, []string{`{"error":"no outage \"F0/nope\" (IDs are feeder/device/start-ms; escape the slashes as %2F)"}`}},
		{"/api/v1/devices", 200, []string{`{"devices":[{"id":"F0-D0","feeder":"F0","link":"l0","kind":"meter","comm":"ok","up":true,"last_poll":"2025-01-15T12:00:03Z","last_good":"2025-01-15T12:00:03Z","latency_seconds":0.012,"consecutive_failures":0,`,
			`"points":[{"name":"va","quality":"good"},{"name":"vb","quality":"good"},{"name":"vc","quality":"stale"}]}`}},
		{"/api/v1/devices?feeder=X", 400, []string{`{"error":"unknown feeder \"X\""}`}},
		{"/api/v1/events?kind=de_energized&limit=1", 200, []string{`{"events":[{"id":`, `"device":"F0-D1","feeder":"F0","kind":"de_energized","stage":"start","start":"2025-01-15T12:00:03Z",`}},
		{"/api/v1/events?kind=de_energized,sag&feeder=F0&since=2025-01-15T12:00:00Z&until=2025-01-15T12:00:03Z", 200, []string{`"kind":"de_energized"`, `"kind":"de_energized"`}},
		{"/api/v1/events?since=2025-01-15T12:00:04Z", 200, []string{`{"events":[]}`}},
		{"/api/v1/events?kind=blackout", 400, []string{`{"error":"unknown event kind \"blackout\" (one of sag, swell, interruption, band, breaker_open, breaker_close, trip, reclose, lockout, recloser_sequence, comm_lost, de_energized)"}`}},
		{"/api/v1/events?since=yesterday", 400, []string{`{"error":"since \"yesterday\" is not an RFC 3339 time"}`}},
		{"/api/v1/events?since=2025-01-15T12:00:04Z&until=2025-01-15T12:00:00Z", 400, []string{`{"error":"until is before since"}`}},
		{"/api/v1/events?limit=0", 400, []string{`{"error":"limit \"0\": want 1..1000"}`}},
		{"/api/v1/events?limit=1001", 400, []string{`{"error":"limit \"1001\": want 1..1000"}`}},
		{"/api/v1/reliability", 200, []string{`{"period":{"year":2025,"start":"2025-01-01T00:00:00Z","end":"2026-01-01T00:00:00Z"},"feeders":[{"feeder":"F0","customers_served":300,"customers_interrupted":0,`,
			`"system":{"customers_served":300,"customers_interrupted":0,"customer_minutes_interrupted":0,`}},
		{"/api/v1/reliability?feeder=F0", 200, []string{`"feeders":[{"feeder":"F0"`}},
		{"/api/v1/reliability?feeder=nope", 400, []string{`{"error":"unknown feeder \"nope\""}`}},
		{"/api/v1/nope", 404, []string{`{"error":"no such endpoint: /api/v1/nope (see /api/v1/openapi.json)"}`}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			code, body := d.do(t, "GET", tc.path, "")
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, body)
			}
			compact := compactJSON(t, body)
			rest := compact
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("answer lacks %s\nin %s", w, compact)
				}
				rest = rest[i+len(w):]
			}
		})
	}
	// Another method on a known path: 405 in JSON with Allow.
	code, body := d.do(t, "DELETE", "/api/v1/outages", "")
	if code != 405 || compactJSON(t, body) != `{"error":"method DELETE not allowed on /api/v1/outages (allowed: GET)"}` {
		t.Errorf("DELETE: %d %s", code, body)
	}
	d.restore(t)
	code, body = d.do(t, "GET", "/api/v1/outages", "")
	if c := compactJSON(t, body); code != 200 || !strings.Contains(c, `"active":[],"recent":[{"id":"`+id+`","feeder":"F0","device":"F0-D0","status":"restored","start":"2025-01-15T12:00:03Z","end":"2025-01-15T12:00:04Z","duration_seconds":1,"customers_affected":300,"customers_out":0,"customers_restored":300,`) ||
		!strings.Contains(c, `"steps":[{"time":"2025-01-15T12:00:04Z","customers":`) {
		t.Errorf("after restoration: %d %s", code, c)
	}
	// Both meters came back at 12:00:04: one step of 300 customers, or two
	// at that time when the worker took the two meters' polls in two
	// batches (each meter feeds its own section).
	var b OutagesView
	if err := json.Unmarshal([]byte(body), &b); err != nil || len(b.Recent) != 1 {
		t.Fatalf("after restoration: %v %s", err, body)
	}
	sum := 0
	for _, st := range b.Recent[0].Steps {
		if st.Time != "2025-01-15T12:00:04Z" || st.Sustained {
			t.Errorf("restoration step %+v, want at 2025-01-15T12:00:04Z, momentary", st)
		}
		sum += st.Customers
	}
	if sum != 300 || len(b.Recent[0].Steps) > 2 {
		t.Errorf("restoration steps %+v: want 300 customers back in one or two steps", b.Recent[0].Steps)
	}
}

// compactJSON is the answer without white space, keys in the server's
// order.
func compactJSON(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("not JSON: %v: %s", err, s)
	}
	return b.String()
}

// sseReader reads one stream connection.
type sseReader struct {
	resp *http.Response
	r    *bufio.Reader
}

type sseEvent struct {
	id, typ, data string
}

func openStream(t *testing.T, d *desk, last string) *sseReader {
	t.Helper()
	req, _ := http.NewRequest("GET", d.base+"/api/v1/stream", nil)
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	return &sseReader{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next reads the next message with an id, within 5 s.
func (s *sseReader) next(t *testing.T) sseEvent {
	t.Helper()
	type res struct {
		ev  sseEvent
		err error
	}
	c := make(chan res, 1)
	go func() {
		var ev sseEvent
		for {
			ln, err := s.r.ReadString('\n')
			if err != nil {
				c <- res{err: err}
				return
			}
			ln = strings.TrimRight(ln, "\n")
			switch {
			case ln == "":
				if ev.id != "" {
					c <- res{ev: ev}
					return
				}
			case strings.HasPrefix(ln, "id: "):
				ev.id = ln[4:]
			case strings.HasPrefix(ln, "event: "):
				ev.typ = ln[7:]
			case strings.HasPrefix(ln, "data: "):
				ev.data = ln[6:]
			}
		}
	}()
	select {
	case r := <-c:
		if r.err != nil {
			t.Fatalf("stream: %v", r.err)
		}
		return r.ev
	case <-time.After(5 * time.Second):
		s.resp.Body.Close()
		t.Fatal("no stream message within 5 s")
	}
	return sseEvent{}
}

func (s *sseReader) close() { s.resp.Body.Close() }
