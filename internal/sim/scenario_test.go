package sim

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseScenarioGood(t *testing.T) {
	sc, err := LoadScenario("testdata/scenario/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if sc.Source != "testdata/scenario/good.yaml" || sc.Seed == nil || *sc.Seed != 7 || sc.TimeScale != 10 ||
		!sc.Start.Equal(time.Date(2025, 1, 15, 6, 30, 0, 0, time.UTC)) {
		t.Fatalf("scenario %s seed %v scale %v start %v", sc.Source, sc.Seed, sc.TimeScale, sc.Start)
	}
	type entry struct {
		offset time.Duration
		action Action
		target string
	}
	var got []entry
	for _, ev := range sc.Events {
		got = append(got, entry{ev.offset, ev.Action, ev.Target})
	}
	want := []entry{
		{30 * time.Second, ActionFault, "F1-S2"},
		{40 * time.Second, ActionSag, "F2"},
		{time.Minute, ActionCommsLoss, "F1-MTR"},
		{time.Minute, ActionException, "F1-REC"},
		{150 * time.Second, ActionLatency, "F2-BRK"},
		{155 * time.Second, ActionSet, "F1-BRK"},
		{160 * time.Second, ActionClose, "TIE"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events\n%v\nwant\n%v", got, want)
	}
	f := sc.Events[0]
	if !*f.Permanent || f.Phases != "AB" || *f.Current != 2500 || f.ClearAfter != nil {
		t.Fatalf("fault %+v", f)
	}
	if s := sc.Events[1]; *s.Magnitude != 0.7 || s.Duration.D() != 10*time.Second || s.Phases != "b" {
		t.Fatalf("sag %+v", s)
	}
	if e := sc.Events[3]; !reflect.DeepEqual(e.Points, []string{"va", "vb"}) || *e.Code != 6 {
		t.Fatalf("exception %+v", e)
	}
	if l := sc.Events[4]; l.Delay.D() != 250*time.Millisecond {
		t.Fatalf("latency %+v", l)
	}
	// Its targets exist in twoFeeders.
	s := newFeederSim(t, "")
	if err := s.CheckScenario(sc); err != nil {
		t.Fatal(err)
	}
}

func TestParseScenarioBad(t *testing.T) {
	tests := map[string][]string{
		"bad-action": {
			`3: events[0].action: "explode" is not one of fault, clear_fault, sag, swell, open, close, comms_loss, comms_restore, exception, latency, bad_crc, half_open, set, release`,
			`5: events[1].action: missing`,
		},
		"bad-at-and-after": {
			`5: events[1]: set exactly one of at and after`,
			`9: events[2]: set exactly one of at and after`,
		},
		"bad-duration":  {`2: events[0].at: "30" is not a duration such as 10s or 1m30s`},
		"bad-empty":     {`1: the file is empty`},
		"bad-no-events": {`2: events: no events`},
		"bad-order":     {`8: events[2].at: 1m5s is before the previous event (1m10s): events are in time order`},
		"bad-params": {
			`2: events[0].magnitude: sag needs magnitude`,
			`2: events[0].duration: sag needs duration`,
			`8: events[1].magnitude: open takes no parameters`,
			`12: events[2].delay: fault takes permanent, clear_after, phases, current, not delay`,
			`13: events[3].target: missing`,
		},
		"bad-syntax":        {`1: did not find expected '-' indicator`},
		"bad-time-scale":    {`1: time_scale: 5000 is outside (0, 1000]`},
		"bad-two-documents": {`3: only one YAML document is allowed`},
		"bad-type":          {`5: events[0].magnitude: want a number, got "high"`},
		"bad-unknown-key":   {`5: events[0].magnitud: unknown key "magnitud" (did you mean "magnitude"?)`},
		"bad-values": {
			`5: events[0].magnitude: a sag is below 1 pu: 1.2 is outside [0, 1)`,
			`6: events[0].duration: 0s is not positive`,
			`7: events[0].phases: phases "AD": 'D' is not A, B or C`,
			`11: events[1].magnitude: a swell is above 1 pu: 0.9 is outside (1, 2]`,
			`17: events[2].clear_after: a permanent fault does not clear`,
			`21: events[3].mode: "loud" is neither silent nor refuse`,
			`26: events[4].code: 7 is not a Modbus exception code (1-6, 8, 10, 11; 0 removes the exception)`,
			`30: events[5].delay: -1s is outside 0s..1h`,
		},
	}
	files, err := filepath.Glob("testdata/scenario/bad-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Fatalf("%d bad fixtures, %d expectations", len(files), len(tests))
	}
	for name, lines := range tests {
		t.Run(name, func(t *testing.T) {
			path := "testdata/scenario/" + name + ".yaml"
			want := make([]string, len(lines))
			for i, l := range lines {
				if strings.HasPrefix(l, ":") {
					want[i] = path + l
				} else {
					want[i] = path + ":" + l
				}
			}
			_, err := LoadScenario(path)
			if err == nil || err.Error() != strings.Join(want, "\n") {
				t.Fatalf("error\n%v\nwant\n%s", err, strings.Join(want, "\n"))
			}
		})
	}
}

func TestCheckScenarioTargets(t *testing.T) {
	sc, err := LoadScenario("testdata/scenario/targets.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := newFeederSim(t, "")
	want := strings.Join([]string{
		`testdata/scenario/targets.yaml:4: events[0].target: no feeder, node or device "F9"`,
		`testdata/scenario/targets.yaml:7: events[1].target: F1 is a feeder: a fault is on a node's section`,
		`testdata/scenario/targets.yaml:10: events[2].target: F1-S2 is a section on feeder F1: only breakers, reclosers, sectionalizers and switches open and close`,
		`testdata/scenario/targets.yaml:13: events[3].target: F1-S1 is a section on feeder F1: comms_loss needs a device`,
		`testdata/scenario/targets.yaml:17: events[4].point: model is a string point: set takes numbers`,
		`testdata/scenario/targets.yaml:22: events[5].points: device F1-MTR (profile pm5100) has no point "vx"`,
	}, "\n")
	if err := s.CheckScenario(sc); err == nil || err.Error() != want {
		t.Fatalf("error\n%v\nwant\n%s", err, want)
	}
	// Play refuses it as a whole: nothing is scheduled.
	if err := s.Play(sc); err == nil {
		t.Fatal("Play accepted bad targets")
	}
	if n := s.w.Pending(); n != 0 {
		t.Fatalf("%d timers after a refused scenario", n)
	}
}

func TestEventJSON(t *testing.T) {
	tests := []struct {
		in   string
		want string // the error, or "" and then the re-encoded event
	}{
		{`{"action":"sag","target":"F1","magnitude":0.7,"duration":"10s","phases":"B","after":"1m30s"}`,
			`{"after":"1m30s","action":"sag","target":"F1","magnitude":0.7,"duration":"10s","phases":"B"}`},
		{`{"action":"latency","target":"M","delay":"250ms"}`, `{"action":"latency","target":"M","delay":"250ms"}`},
		{`{"action":"latency","target":"M","delay":250}`, `duration 250 is not a string such as "10s"`},
		{`{"action":"latency","target":"M","delay":"soon"}`, `"soon" is not a duration such as 10s or 1m30s`},
	}
	for _, tt := range tests {
		var ev Event
		err := json.Unmarshal([]byte(tt.in), &ev)
		if err != nil {
			if !strings.Contains(err.Error(), tt.want) || tt.want == "" {
				t.Errorf("%s: %v, want %q", tt.in, err, tt.want)
			}
			continue
		}
		out, _ := json.Marshal(ev)
		if string(out) != tt.want {
			t.Errorf("%s: re-encoded %s, want %s", tt.in, out, tt.want)
		}
	}
}

func TestInjectErrors(t *testing.T) {
	s := newFeederSim(t, "")
	tests := []struct {
		ev   Event
		want string
	}{
		{Event{At: dur(time.Second), Action: ActionOpen, Target: "F1-REC"}, "at: an injected event happens now or after a delay: use after"},
		{Event{Action: "boom", Target: "F1-REC"}, `action: "boom" is not one of fault, clear_fault, sag, swell, open, close, comms_loss, comms_restore, exception, latency, bad_crc, half_open, set, release`},
		{Event{Action: ActionOpen, Target: "NOPE"}, `target: no feeder, node or device "NOPE"`},
		{Event{Action: ActionSet, Target: "F1-BRK", Point: "van"}, "value: set needs value"},
		{Event{Action: ActionOpen, Target: "F1-MTR"}, "target: F1-MTR is a meter on feeder F1: only breakers, reclosers, sectionalizers and switches open and close"},
	}
	for _, tt := range tests {
		if err := s.Inject(tt.ev); err == nil || err.Error() != tt.want {
			t.Errorf("Inject(%s %s) = %v, want %q", tt.ev.Action, tt.ev.Target, err, tt.want)
		}
	}
}
