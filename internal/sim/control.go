package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// maxBody bounds a control API request body.
const maxBody = 1 << 20

// Handler is rtusim's HTTP API: the devices' state and the control API a
// test rig drives a run with. JSON in and out; errors are {"error": "..."}
// with a 4xx status.
//
//	GET    /healthz                          "ok"
//	GET    /api/devices                      every device: values, feeder, node, energized, comms faults, pinned points
//	GET    /api/devices/{id}                 one device
//	PUT    /api/devices/{id}/points/{point}  {"value": 7000}: hold a point at a value (the set action)
//	DELETE /api/devices/{id}/points/{point}  let the physics drive it again (the release action)
//	GET    /api/feeders                      every feeder's nodes: energized, closed, lockout, shots, trips, faults
//	POST   /api/events                       one scenario event as JSON, applied now (or "after" a delay)
//	POST   /api/scenario                     a scenario YAML body, played from now (replaces the pending events of the
//	                                         previous one); its time_scale applies, its seed and start are ignored
//	POST   /api/pause, /api/resume           stop and restart simulated time
//	GET    /api/clock                        simulated time, elapsed, time scale, paused, tick
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /api/devices", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.States())
	})
	mux.HandleFunc("GET /api/devices/{id}", func(w http.ResponseWriter, r *http.Request) {
		st, ok := s.State(r.PathValue("id"))
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Errorf("no device %q", r.PathValue("id")))
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("PUT /api/devices/{id}/points/{point}", s.handleSetPoint)
	mux.HandleFunc("DELETE /api/devices/{id}/points/{point}", s.handleReleasePoint)
	mux.HandleFunc("GET /api/feeders", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Feeders())
	})
	mux.HandleFunc("POST /api/events", s.handleEvent)
	mux.HandleFunc("POST /api/scenario", s.handleScenario)
	mux.HandleFunc("POST /api/pause", func(w http.ResponseWriter, _ *http.Request) {
		s.writeClock(w)(s.Pause())
	})
	mux.HandleFunc("POST /api/resume", func(w http.ResponseWriter, _ *http.Request) {
		s.writeClock(w)(s.Resume())
	})
	mux.HandleFunc("GET /api/clock", func(w http.ResponseWriter, _ *http.Request) {
		s.writeClock(w)(s.Clock())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no endpoint %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// PointValue is the answer of PUT and DELETE on a point.
type PointValue struct {
	Device string `json:"device"`
	Point  string `json:"point"`
	// Value is what the device now reports (after the point's encoding);
	// absent after DELETE.
	Value  *float64 `json:"value,omitempty"`
	Pinned bool     `json:"pinned"`
}

func (s *Sim) findPoint(w http.ResponseWriter, r *http.Request) (dev, point string, ok bool) {
	dev, point = r.PathValue("id"), r.PathValue("point")
	st, found := s.State(dev)
	if !found {
		writeError(w, http.StatusNotFound, fmt.Errorf("no device %q", dev))
		return "", "", false
	}
	if _, has := st.Values[point]; !has {
		writeError(w, http.StatusNotFound, fmt.Errorf("device %s (profile %s) has no point %q", dev, st.Profile, point))
		return "", "", false
	}
	return dev, point, true
}

func (s *Sim) handleSetPoint(w http.ResponseWriter, r *http.Request) {
	dev, point, ok := s.findPoint(w, r)
	if !ok {
		return
	}
	var body struct {
		Value *float64 `json:"value"`
	}
	if err := decodeJSON(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if body.Value == nil {
		writeError(w, http.StatusBadRequest, errors.New(`the body needs "value"`))
		return
	}
	v, err := s.SetPoint(dev, point, *body.Value)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, PointValue{Device: dev, Point: point, Value: &v, Pinned: true})
}

func (s *Sim) handleReleasePoint(w http.ResponseWriter, r *http.Request) {
	dev, point, ok := s.findPoint(w, r)
	if !ok {
		return
	}
	if err := s.Inject(Event{Action: ActionRelease, Target: dev, Point: point}); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, PointValue{Device: dev, Point: point})
}

// EventResult is the answer of POST /api/events.
type EventResult struct {
	Action Action `json:"action"`
	Target string `json:"target"`
	// At is the simulated time at which the event applies (applied, unless
	// it had an after).
	At time.Time `json:"at"`
}

func (s *Sim) handleEvent(w http.ResponseWriter, r *http.Request) {
	var ev Event
	if err := decodeJSON(r, &ev); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := s.Inject(ev); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	at := s.Now()
	if ev.After != nil {
		at = at.Add(ev.After.D())
	}
	writeJSON(w, http.StatusOK, EventResult{Action: ev.Action, Target: ev.Target, At: at})
}

// ScenarioResult is the answer of POST /api/scenario.
type ScenarioResult struct {
	Events int `json:"events"`
	// Start is the simulated time the scenario's offsets count from.
	Start     time.Time `json:"start"`
	TimeScale float64   `json:"time_scale"`
	// Ignored lists the scenario's keys that only apply at the start of a
	// run (seed, start).
	Ignored []string `json:"ignored,omitempty"`
}

func (s *Sim) handleScenario(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("read scenario: %w", err))
		return
	}
	sc, err := ParseScenario("scenario", data)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	// A run has its seed and start time already; a scenario file written
	// for the start of a run still plays, from now.
	var ignored []string
	if sc.Seed != nil {
		ignored = append(ignored, "seed")
	}
	if !sc.Start.IsZero() {
		ignored = append(ignored, "start")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sync(); err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if err := s.checkScenario(sc); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if sc.TimeScale != 0 {
		if err := s.rebase(); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		s.scale = sc.TimeScale
	}
	if err := s.play(sc); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, ScenarioResult{Events: len(sc.Events), Start: s.w.Now(), TimeScale: s.scale, Ignored: ignored})
}

func (s *Sim) writeClock(w http.ResponseWriter) func(ClockState, error) {
	return func(cs ClockState, err error) {
		if err != nil {
			writeError(w, http.StatusConflict, err)
			return
		}
		writeJSON(w, http.StatusOK, cs)
	}
}

// decodeJSON reads one JSON value; unknown fields are errors.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode request body: %w", err)
	}
	if dec.More() {
		return errors.New("decode request body: more than one JSON value")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{err.Error()})
}
