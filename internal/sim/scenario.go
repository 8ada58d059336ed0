package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/feederd/feederd/internal/sim/devsrv"
	"github.com/feederd/feederd/internal/sim/physics"
	"github.com/feederd/feederd/internal/yamlfile"
)

// Scenario is a timeline of events for a simulated run, read from a YAML
// file of this form (unknown keys are errors; messages carry file:line):
//
//	seed: 7                  # optional: the noise seed (overrides the config's)
//	time_scale: 10           # optional: simulated seconds per wall second (default 1)
//	start: 2025-01-15T12:00:00Z  # optional: the simulated start time, which
//	                         # sets the time of day of the load curve (default: now)
//	events:
//	  - at: 30s              # simulated time since the start,
//	    action: fault        # or after: 10s, since the previous event
//	    target: F101-S3
//	    permanent: true
//
// Every event sets exactly one of at and after; times never go back. Times
// and durations are simulated time: with time_scale 10, at: 5m happens 30
// wall seconds after the start. The actions, their targets and parameters:
//
//	fault          node       permanent (false), clear_after, phases (ABC), current (2000 A)
//	               A temporary fault (permanent false) without clear_after
//	               clears once its section is dead, so the first reclose holds.
//	clear_fault    node       removes the faults on the node
//	sag, swell     feeder or node   magnitude (pu, required), duration (required), phases (ABC)
//	               holds the bus of the node's section (a feeder: its
//	               substation source) at magnitude on those phases
//	open, close    switching node (breaker, recloser, sectionalizer, switch)
//	               a command: no trip counted; close also resets lockout and the shot counter
//	comms_loss     device     mode: silent (default: never answers) or refuse (refuses connections)
//	comms_restore  device     clears every comms fault of the device
//	exception      device     points (required), code (default 2; 0 removes them)
//	latency        device     delay (required; 0s removes it)
//	bad_crc        device     RTU answers carry a corrupted CRC
//	half_open      device     TCP connections stay open but go silent
//	set            device     point, value: holds the point at value (the physics leaves it)
//	release        device     point: lets the physics drive the point again
//
// A node or device target can be given by the node's ID or its device's
// ID. The control API takes the same events as JSON, durations as strings
// ("10s"); there, at is not allowed and after delays the event from now.
type Scenario struct {
	// Source names where it came from, for messages.
	Source string
	// Seed, when set, replaces the configuration's seed.
	Seed *uint64
	// TimeScale, when not 0, is the simulated seconds per wall second.
	TimeScale float64
	// Start, when not zero, is the simulated time at which it starts.
	Start  time.Time
	Events []Event

	root *yaml.Node // for the lines of messages about targets
}

// Action is what an event does.
type Action string

// The actions.
const (
	ActionFault        Action = "fault"
	ActionClearFault   Action = "clear_fault"
	ActionSag          Action = "sag"
	ActionSwell        Action = "swell"
	ActionOpen         Action = "open"
	ActionClose        Action = "close"
	ActionCommsLoss    Action = "comms_loss"
	ActionCommsRestore Action = "comms_restore"
	ActionException    Action = "exception"
	ActionLatency      Action = "latency"
	ActionBadCRC       Action = "bad_crc"
	ActionHalfOpen     Action = "half_open"
	ActionSet          Action = "set"
	ActionRelease      Action = "release"
)

// Event is one entry of a scenario, or one event injected through the
// control API.
type Event struct {
	At     *Duration `yaml:"at" json:"at,omitempty"`
	After  *Duration `yaml:"after" json:"after,omitempty"`
	Action Action    `yaml:"action" json:"action"`
	Target string    `yaml:"target" json:"target"`

	Magnitude  *float64  `yaml:"magnitude" json:"magnitude,omitempty"`
	Duration   *Duration `yaml:"duration" json:"duration,omitempty"`
	Phases     string    `yaml:"phases" json:"phases,omitempty"`
	Permanent  *bool     `yaml:"permanent" json:"permanent,omitempty"`
	ClearAfter *Duration `yaml:"clear_after" json:"clear_after,omitempty"`
	Current    *float64  `yaml:"current" json:"current,omitempty"`
	Mode       string    `yaml:"mode" json:"mode,omitempty"`
	Points     []string  `yaml:"points" json:"points,omitempty"`
	Code       *int      `yaml:"code" json:"code,omitempty"`
	Delay      *Duration `yaml:"delay" json:"delay,omitempty"`
	Point      string    `yaml:"point" json:"point,omitempty"`
	Value      *float64  `yaml:"value" json:"value,omitempty"`

	// offset is the event's time since the scenario's start.
	offset time.Duration
}

// Duration is a time.Duration written as text ("2s", "1m30s") in YAML and
// JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes "1m30s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads what time.ParseDuration reads.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// UnmarshalJSON takes a string; a number is refused, since its unit would
// be a guess.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s is not a string such as \"10s\"", b)
	}
	return d.UnmarshalText([]byte(s))
}

func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 10s or 1m30s", s)
	}
	return v, nil
}

type fileScenario struct {
	Seed      *uint64   `yaml:"seed"`
	TimeScale float64   `yaml:"time_scale"`
	Start     time.Time `yaml:"start"`
	Events    []Event   `yaml:"events"`
}

// maxTimeScale bounds time_scale: beyond it a 1s tick would need more than
// one step per 10 ms of wall time and physics would fall behind.
const maxTimeScale = 1000

// LoadScenario reads and checks a scenario file. Targets are checked
// against a simulation by Sim.CheckScenario.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return ParseScenario(path, data)
}

// ParseScenario reads a scenario from data; name stands for the file in
// messages.
func ParseScenario(name string, data []byte) (*Scenario, error) {
	sink := yamlfile.NewSink(name)
	var f fileScenario
	if !yamlfile.Decode(data, &f, sink) {
		return nil, sink.Err()
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil { // parsed once already
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := newChecker(name, &root, sink)
	sc := &Scenario{Source: name, Seed: f.Seed, TimeScale: f.TimeScale, Start: f.Start, Events: f.Events, root: &root}
	if f.TimeScale < 0 || f.TimeScale > maxTimeScale || math.IsNaN(f.TimeScale) {
		c.errf(at("time_scale"), "%g is outside (0, %d]", f.TimeScale, maxTimeScale)
	}
	if len(f.Events) == 0 {
		c.errf(at("events"), "no events")
	}
	var prev time.Duration
	for i := range sc.Events {
		ev := &sc.Events[i]
		p := at("events", i)
		switch {
		case (ev.At == nil) == (ev.After == nil):
			c.errf(p, "set exactly one of at and after")
		case ev.At != nil && ev.At.D() < prev:
			c.errf(append(p, "at"), "%s is before the previous event (%s): events are in time order", ev.At, prev)
		case ev.At != nil:
			ev.offset = ev.At.D()
		case ev.After.D() < 0:
			c.errf(append(p, "after"), "%s is negative", ev.After)
		default:
			ev.offset = prev + ev.After.D()
		}
		prev = max(prev, ev.offset)
		for _, fe := range ev.check() {
			c.errf(append(p, fe.key), "%s", fe.msg)
		}
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return sc, nil
}

// fieldError is a problem with one key of an event.
type fieldError struct{ key, msg string }

func (fe fieldError) Error() string {
	if fe.key == "" {
		return fe.msg
	}
	return fe.key + ": " + fe.msg
}

// params lists the keys an action takes besides at, after, action and
// target; required ones first, then the count of required ones.
func (a Action) params() ([]string, int, bool) {
	switch a {
	case ActionFault:
		return []string{"permanent", "clear_after", "phases", "current"}, 0, true
	case ActionSag, ActionSwell:
		return []string{"magnitude", "duration", "phases"}, 2, true
	case ActionClearFault, ActionOpen, ActionClose, ActionCommsRestore, ActionBadCRC, ActionHalfOpen:
		return nil, 0, true
	case ActionCommsLoss:
		return []string{"mode"}, 0, true
	case ActionException:
		return []string{"points", "code"}, 1, true
	case ActionLatency:
		return []string{"delay"}, 1, true
	case ActionSet:
		return []string{"point", "value"}, 2, true
	case ActionRelease:
		return []string{"point"}, 1, true
	}
	return nil, 0, false
}

// actions lists every action for messages.
func actions() string {
	return "fault, clear_fault, sag, swell, open, close, comms_loss, comms_restore, exception, latency, bad_crc, half_open, set, release"
}

// present lists the parameter keys ev sets.
func (ev *Event) present() map[string]bool {
	return map[string]bool{
		"magnitude":   ev.Magnitude != nil,
		"duration":    ev.Duration != nil,
		"phases":      ev.Phases != "",
		"permanent":   ev.Permanent != nil,
		"clear_after": ev.ClearAfter != nil,
		"current":     ev.Current != nil,
		"mode":        ev.Mode != "",
		"points":      ev.Points != nil,
		"code":        ev.Code != nil,
		"delay":       ev.Delay != nil,
		"point":       ev.Point != "",
		"value":       ev.Value != nil,
	}
}

// check validates an event on its own (not its target), key by key.
func (ev *Event) check() []fieldError {
	var errs []fieldError
	bad := func(key, format string, args ...any) {
		errs = append(errs, fieldError{key, fmt.Sprintf(format, args...)})
	}
	params, required, ok := ev.Action.params()
	if !ok {
		if ev.Action == "" {
			bad("action", "missing")
		} else {
			bad("action", "%q is not one of %s", ev.Action, actions())
		}
		return errs
	}
	if ev.Target == "" {
		bad("target", "missing")
	}
	set := ev.present()
	allowed := map[string]bool{}
	for k, name := range params {
		allowed[name] = true
		if k < required && !set[name] {
			bad(name, "%s needs %s", ev.Action, name)
		}
	}
	for _, name := range []string{"magnitude", "duration", "phases", "permanent", "clear_after", "current", "mode", "points", "code", "delay", "point", "value"} {
		if set[name] && !allowed[name] {
			if len(params) == 0 {
				bad(name, "%s takes no parameters", ev.Action)
			} else {
				bad(name, "%s takes %s, not %s", ev.Action, strings.Join(params, ", "), name)
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if ev.Phases != "" {
		if _, err := physics.ParsePhases(ev.Phases); err != nil {
			bad("phases", "%v", err)
		}
	}
	switch ev.Action {
	case ActionFault:
		if ev.Permanent != nil && *ev.Permanent && ev.ClearAfter != nil {
			bad("clear_after", "a permanent fault does not clear")
		}
		if ev.ClearAfter != nil && ev.ClearAfter.D() <= 0 {
			bad("clear_after", "%s is not positive", ev.ClearAfter)
		}
		if ev.Current != nil && !(*ev.Current >= 0 && *ev.Current <= 1e6) {
			bad("current", "%g A is outside 0..1000000", *ev.Current)
		}
	case ActionSag:
		if m := *ev.Magnitude; !(m >= 0 && m < 1) {
			bad("magnitude", "a sag is below 1 pu: %g is outside [0, 1)", m)
		}
	case ActionSwell:
		if m := *ev.Magnitude; !(m > 1 && m <= 2) {
			bad("magnitude", "a swell is above 1 pu: %g is outside (1, 2]", m)
		}
	case ActionCommsLoss:
		if ev.Mode != "" && ev.Mode != "silent" && ev.Mode != "refuse" {
			bad("mode", "%q is neither silent nor refuse", ev.Mode)
		}
	case ActionException:
		if len(ev.Points) == 0 {
			bad("points", "no points")
		}
		if ev.Code != nil {
			if c := *ev.Code; c != 0 && (c < 0 || c > 255 || !devsrv.ValidException(byte(c))) {
				bad("code", "%d is not a Modbus exception code (1-6, 8, 10, 11; 0 removes the exception)", c)
			}
		}
	case ActionLatency:
		if ev.Delay.D() < 0 || ev.Delay.D() > time.Hour {
			bad("delay", "%s is outside 0s..1h", ev.Delay)
		}
	case ActionSet:
		if math.IsNaN(*ev.Value) || math.IsInf(*ev.Value, 0) {
			bad("value", "%g is not a finite number", *ev.Value)
		}
	}
	if (ev.Action == ActionSag || ev.Action == ActionSwell) && ev.Duration.D() <= 0 {
		bad("duration", "%s is not positive", ev.Duration)
	}
	return errs
}
