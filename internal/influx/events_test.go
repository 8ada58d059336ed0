package influx

import (
	"strings"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
)

// seriesAndTime is a line's measurement and tags, and its timestamp: two
// lines with the same pair are one point in InfluxDB.
func seriesAndTime(line string) (string, string) {
	line = strings.TrimSuffix(line, "\n")
	end := 0
	for end < len(line) && line[end] != ' ' {
		if line[end] == '\\' {
			end++ // an escaped character
		}
		end++
	}
	return line[:end], line[strings.LastIndexByte(line, ' ')+1:]
}

func TestEventLines(t *testing.T) {
	m := &config.Model{Devices: []*config.Device{{ID: "F1-REC", Feeder: "F 1"}, {ID: "F1-BRK", Feeder: "F 1"}}}
	e := NewEventEncoder(m)
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC).UnixNano()
	start := detect.Event{ID: 7, Kind: detect.KindSag, Stage: detect.StageStart, Start: t0, Phases: detect.PhaseB,
		Worst: 0.8, WorstVolts: 5760, Severity: detect.SeverityWarning, DurationPrecision: time.Second}
	end := start
	end.Stage, end.End, end.Phases, end.Worst, end.WorstVolts = detect.StageEnd, t0+int64(4*time.Second), detect.PhaseA|detect.PhaseB, 0.7, 5040
	end.Category = detect.CategoryTemporarySag

	ls, le := string(e.Append(nil, &start)), string(e.Append(nil, &end))
	if want := "feeder_event,device=F1-REC,feeder=F\\ 1,kind=sag,severity=warning id=7i,stage=\"start\",start=1795687200000i,precision_s=1,phases=\"B\",worst_pu=0.8,worst_v=5760 1795687200000\n"; ls != want {
		t.Errorf("start line\n%s\nwant\n%s", ls, want)
	}
	if want := "feeder_event,device=F1-REC,feeder=F\\ 1,kind=sag,severity=warning id=7i,stage=\"end\",category=\"temporary_sag\",start=1795687200000i,end=1795687204000i,duration_s=4,precision_s=1,phases=\"AB\",worst_pu=0.7,worst_v=5040 1795687200000\n"; le != want {
		t.Errorf("end line\n%s\nwant\n%s", le, want)
	}
	// The end overwrites the start although the phases grew.
	s1, ts1 := seriesAndTime(ls)
	s2, ts2 := seriesAndTime(le)
	if s1 != s2 || ts1 != ts2 {
		t.Errorf("start and end are different points: %q@%s vs %q@%s", s1, ts1, s2, ts2)
	}

	// Band events of two phases starting together are two points.
	bandA := detect.Event{ID: 8, Kind: detect.KindBand, Stage: detect.StageStart, Start: t0, Phases: detect.PhaseA, Severity: detect.SeverityWarning}
	bandC := bandA
	bandC.ID, bandC.Phases = 9, detect.PhaseC
	a, _ := seriesAndTime(string(e.Append(nil, &bandA)))
	c, _ := seriesAndTime(string(e.Append(nil, &bandC)))
	if a == c || !strings.Contains(a, ",phase=A,") || !strings.Contains(c, ",phase=C,") {
		t.Errorf("band series %q and %q", a, c)
	}

	// Events without a voltage carry no worst values; cause_device names the device.
	de := detect.Event{ID: 10, Device: 0, Kind: detect.KindDeEnergized, Stage: detect.StageStart, Start: t0,
		Phases: detect.PhaseA | detect.PhaseB | detect.PhaseC, Cause: detect.CauseUpstreamOpen, CauseDevice: 1, Severity: detect.SeverityCritical}
	line := string(e.Append(nil, &de))
	if strings.Contains(line, "worst") || !strings.Contains(line, `cause="upstream_open",cause_device="F1-BRK"`) {
		t.Errorf("de_energized line: %s", line)
	}
	if got := e.Append(nil, &detect.Event{Device: 5}); len(got) != 0 {
		t.Errorf("unknown device appended %q", got)
	}
}
