package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/poll"
)

//go:embed openapi.json
var openAPI []byte

// route is one endpoint of the desk. The table in routes is the one list
// of them: the mux, the guard and TestOpenAPI all read it.
type route struct {
	method, path string
	h            http.HandlerFunc
	// mutating routes always need the token and a same-origin POST.
	mutating bool
	// page routes answer a login form when the token is missing.
	page bool
	// open routes need no token even off loopback (assets, the login).
	open bool
}

func (s *Server) deskRoutes() []route {
	return []route{
		{method: "GET", path: "/api/v1/feeders", h: s.feeders},
		{method: "GET", path: "/api/v1/feeders/{id}", h: s.feeder},
		{method: "GET", path: "/api/v1/feeders/{id}/voltage", h: s.voltage},
		{method: "GET", path: "/api/v1/outages", h: s.outages},
		{method: "GET", path: "/api/v1/outages/{id}", h: s.outage},
		{method: "POST", path: "/api/v1/outages/{id}/etr", h: s.setETR, mutating: true},
		{method: "POST", path: "/api/v1/outages/{id}/ack", h: s.ack, mutating: true},
		{method: "GET", path: "/api/v1/devices", h: s.devices},
		{method: "GET", path: "/api/v1/events", h: s.events},
		{method: "GET", path: "/api/v1/reliability", h: s.reliability},
		{method: "GET", path: "/api/v1/stream", h: s.stream},
		{method: "GET", path: "/api/v1/openapi.json", h: s.openapi},
		{method: "GET", path: "/{$}", h: s.pageHandler, page: true},
		{method: "GET", path: "/board", h: s.boardHandler, page: true},
		{method: "GET", path: "/assets/{file}", h: s.asset, open: true},
		{method: "GET", path: "/login", h: s.loginForm, open: true, page: true},
		{method: "POST", path: "/login", h: s.loginPost, open: true, page: true},
	}
}

func (s *Server) mountDesk(mux *http.ServeMux) error {
	page, err := newPageRenderer()
	if err != nil {
		return err
	}
	s.page = page
	s.routes = s.deskRoutes()
	s.pathOnly = http.NewServeMux()
	for _, rt := range s.routes {
		mux.Handle(rt.method+" "+rt.path, s.guard(rt))
		if rt.path != "/{$}" && rt.path != "/login" {
			s.pathOnly.Handle(rt.path, http.NotFoundHandler())
		}
	}
	mux.HandleFunc("/api/", s.notFound)
	return nil
}

// errorBody is every error of the API.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, errorBody{Error: fmt.Sprintf(format, args...)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// notFound answers unknown API paths, and known paths with another
// method, in JSON.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if _, pat := s.pathOnly.Handler(r); pat != "" {
		var allow []string
		for _, rt := range s.routes {
			if rt.path == pat {
				allow = append(allow, rt.method)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))
		return
	}
	writeError(w, http.StatusNotFound, "no such endpoint: %s (see /api/v1/openapi.json)", r.URL.Path)
}

func (s *Server) now() int64 {
	if s.opts.Live != nil {
		return s.opts.Live.opts.Now()
	}
	return time.Now().UnixNano()
}

// knownFeeder checks a feeder query parameter or path value.
func (s *Server) knownFeeder(id string) bool {
	m := s.model.Load()
	for _, d := range m.Devices {
		if d.Feeder == id {
			return true
		}
	}
	return m.Topology != nil && m.Topology.Feeder(id) != nil
}

func (s *Server) feederParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	f := r.URL.Query().Get("feeder")
	if f != "" && !s.knownFeeder(f) {
		writeError(w, http.StatusBadRequest, "unknown feeder %q", f)
		return "", false
	}
	return f, true
}

func (s *Server) feederList() []FeederView {
	snap := s.opts.Live.snap.Load()
	return feederViews(s.model.Load(), s.opts.Source.Snapshot(), snap.active)
}

func (s *Server) feeders(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"feeders": s.feederList()})
}

func (s *Server) feeder(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, f := range s.feederList() {
		if f.ID == id {
			writeJSON(w, http.StatusOK, f)
			return
		}
	}
	writeError(w, http.StatusNotFound, "unknown feeder %q", id)
}

// VoltageView is an hour of a feeder's voltages, one series per device
// that measures voltage: the mean of its phases in pu.
type VoltageView struct {
	Feeder      string              `json:"feeder"`
	StepSeconds float64             `json:"step_seconds"`
	Bands       map[string]BandView `json:"bands"`
	Series      []SeriesView        `json:"series"`
}

// SeriesView is one device's voltage points.
type SeriesView struct {
	Device string      `json:"device"`
	Points []voltPoint `json:"points"`
}

func (s *Server) voltageView(id string) VoltageView {
	m := s.model.Load()
	snap := s.opts.Live.snap.Load()
	v := VoltageView{Feeder: id, StepSeconds: s.opts.Live.opts.HistoryStep.Seconds(), Series: []SeriesView{},
		Bands: map[string]BandView{
			"range_a": {m.Detect.RangeA.Low, m.Detect.RangeA.High},
			"range_b": {m.Detect.RangeB.Low, m.Detect.RangeB.High},
		}}
	for _, d := range m.Devices {
		if d.Feeder != id {
			continue
		}
		if pts := snap.series(d.Index); pts != nil {
			v.Series = append(v.Series, SeriesView{Device: d.ID, Points: pts})
		}
	}
	return v
}

func (s *Server) voltage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.knownFeeder(id) {
		writeError(w, http.StatusNotFound, "unknown feeder %q", id)
		return
	}
	writeJSON(w, http.StatusOK, s.voltageView(id))
}

// OutagesView is the outage board.
type OutagesView struct {
	Active []OutageView `json:"active"`
	Recent []OutageView `json:"recent"`
}

func (s *Server) outageBoard(feeder string) OutagesView {
	snap := s.opts.Live.snap.Load()
	notes := s.opts.Live.Notes()
	now := s.now()
	v := OutagesView{Active: []OutageView{}, Recent: []OutageView{}}
	for _, o := range snap.active {
		if feeder == "" || o.Feeder == feeder {
			ov := outageView(&o, notes)
			ov.withDuration(now)
			v.Active = append(v.Active, ov)
		}
	}
	for _, o := range snap.recent {
		if feeder == "" || o.Feeder == feeder {
			v.Recent = append(v.Recent, outageView(&o, notes))
		}
	}
	return v
}

func (s *Server) outages(w http.ResponseWriter, r *http.Request) {
	f, ok := s.feederParam(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.outageBoard(f))
}

func (s *Server) findOutage(id string) (OutageView, bool) {
	b := s.outageBoard("")
	for _, o := range append(b.Active, b.Recent...) {
		if o.ID == id {
			return o, true
		}
	}
	return OutageView{}, false
}

func (s *Server) outage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	o, ok := s.findOutage(id)
	if !ok {
		writeError(w, http.StatusNotFound, "no outage %q (IDs are feeder/device/start-ms; escape the slashes as %%2F)", id)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// maxBody bounds what a POST may send.
const maxBody = 4096

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad request body: %v", err)
		return false
	}
	return true
}

// activeOutage finds an active outage for a change; restored outages take
// no more notes.
func (s *Server) activeOutage(w http.ResponseWriter, id string) bool {
	for _, o := range s.opts.Live.snap.Load().active {
		if o.ID == id {
			return true
		}
	}
	if _, ok := s.findOutage(id); ok {
		writeError(w, http.StatusConflict, "outage %q is over", id)
		return false
	}
	writeError(w, http.StatusNotFound, "no active outage %q", id)
	return false
}

func (s *Server) setETR(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var body struct {
		ETR string `json:"etr"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	var etr time.Time
	if body.ETR != "" {
		var err error
		etr, err = time.Parse(time.RFC3339, body.ETR)
		if err != nil {
			writeError(w, http.StatusBadRequest, "etr %q is not an RFC 3339 time (2025-01-15T14:30:00Z)", body.ETR)
			return
		}
	}
	if !s.activeOutage(w, id) {
		return
	}
	s.opts.Live.setNote(id, func(n *Note) { n.ETR = etr })
	s.opts.Logger.Info("estimated restoration set", "outage_id", id, "etr", body.ETR)
	o, _ := s.findOutage(id)
	writeJSON(w, http.StatusOK, o)
}

func (s *Server) ack(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var body struct {
		By string `json:"by"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	body.By = strings.TrimSpace(body.By)
	if body.By == "" || len(body.By) > 64 {
		writeError(w, http.StatusBadRequest, "by: the agent's name, 1 to 64 characters")
		return
	}
	if !s.activeOutage(w, id) {
		return
	}
	at := time.Unix(0, s.now())
	s.opts.Live.setNote(id, func(n *Note) { n.AckBy, n.AckAt = body.By, at })
	s.opts.Logger.Info("outage acknowledged", "outage_id", id, "by", body.By)
	o, _ := s.findOutage(id)
	writeJSON(w, http.StatusOK, o)
}

func (s *Server) devices(w http.ResponseWriter, r *http.Request) {
	f, ok := s.feederParam(w, r)
	if !ok {
		return
	}
	var polls []poll.DeviceStatus
	if s.opts.Polls != nil {
		polls = s.opts.Polls()
	}
	all := deviceViews(s.model.Load(), s.opts.Source.Snapshot(), polls)
	out := all[:0:0]
	for _, d := range all {
		if f == "" || d.Feeder == f {
			out = append(out, d)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": out})
}

// maxEvents bounds one answer of /api/v1/events.
const maxEvents = 1000

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, ok := s.feederParam(w, r)
	if !ok {
		return
	}
	var kinds []string
	if k := q.Get("kind"); k != "" {
		for _, name := range strings.Split(k, ",") {
			if !validKind(name) {
				writeError(w, http.StatusBadRequest, "unknown event kind %q (one of %s)", name, strings.Join(kindList(), ", "))
				return
			}
			kinds = append(kinds, name)
		}
	}
	var since, until int64
	for _, p := range []struct {
		key string
		dst *int64
	}{{"since", &since}, {"until", &until}} {
		if v := q.Get(p.key); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				writeError(w, http.StatusBadRequest, "%s %q is not an RFC 3339 time", p.key, v)
				return
			}
			*p.dst = t.UnixNano()
		}
	}
	if since != 0 && until != 0 && until < since {
		writeError(w, http.StatusBadRequest, "until is before since")
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxEvents {
			writeError(w, http.StatusBadRequest, "limit %q: want 1..%d", v, maxEvents)
			return
		}
		limit = n
	}
	evs := s.opts.Live.snap.Load().events
	out := []EventView{}
	for i := len(evs) - 1; i >= 0 && len(out) < limit; i-- {
		e := evs[i]
		if (f != "" && e.Feeder != f) || (kinds != nil && !slices.Contains(kinds, e.Kind)) ||
			(since != 0 && e.start < since) || (until != 0 && e.start > until) {
			continue
		}
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out})
}

func validKind(name string) bool { return slices.Contains(kindList(), name) }

func kindList() []string {
	var out []string
	for k := detect.KindNone + 1; k < detect.NumKinds; k++ {
		out = append(out, k.String())
	}
	return out
}

func (s *Server) reliability(w http.ResponseWriter, r *http.Request) {
	f, ok := s.feederParam(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, reliabilityView(s.opts.Source.Reliability(), s.now(), f))
}

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}

// stream is the live stream (Server-Sent Events): "outage", "event",
// "note" and "state" messages, each with an id. A client that reconnects
// with Last-Event-ID gets what it missed from the replay buffer first, or
// a "reset" message when the buffer no longer holds it (reload then).
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming not supported")
		return
	}
	last := parseID(r.Header.Get("Last-Event-ID"))
	if v := r.URL.Query().Get("last_event_id"); v != "" && last == 0 {
		last = parseID(v)
	}
	sub, backlog, complete := s.opts.Live.subscribe(last)
	defer s.opts.Live.unsubscribe(sub)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// retry: reconnect after a second when the connection drops.
	fmt.Fprintf(w, "retry: 1000\n\n")
	if !complete {
		fmt.Fprintf(w, "id: %d\nevent: reset\ndata: {}\n\n", s.opts.Live.lastID())
	}
	for _, m := range backlog {
		writeMsg(w, m)
	}
	fl.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	ctx := r.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.shutdown.Done():
			return
		case <-sub.gone:
			// Dropped for falling behind, or the desk stopped: the client
			// reconnects and replays from its last id.
			return
		case m := <-sub.c:
			writeMsg(w, m)
			// Write what else is queued before flushing once.
			for n := len(sub.c); n > 0; n-- {
				writeMsg(w, <-sub.c)
			}
			fl.Flush()
		case <-ping.C:
			fmt.Fprintf(w, ": ping\n\n")
			fl.Flush()
		}
	}
}

func writeMsg(w io.Writer, m sseMsg) {
	fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", m.id, m.typ, m.data)
}
