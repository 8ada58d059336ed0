package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/feederd/feederd/internal/atomicfile"
	"github.com/feederd/feederd/internal/detect"
)

// stateVersion is the format of the state file; a file of another version
// is reported and ignored.
const stateVersion = 1

// maxStateBytes bounds what New reads of a state file (about 200 bytes an
// open event: room for a million).
const maxStateBytes = 256 << 20

// stateFile is what a pipeline leaves at shutdown for the next start:
// detection's events in progress and event counters, keyed by device ID so
// that a configuration change between the two runs keeps what it can.
type stateFile struct {
	Version int           `json:"version"`
	Written time.Time     `json:"written"`
	Devices []stateDevice `json:"devices"`
}

type stateDevice struct {
	ID          string       `json:"id"`
	Counter     uint32       `json:"counter"`
	LastVoltage int64        `json:"last_voltage_ns,omitempty"`
	Open        []stateEvent `json:"open,omitempty"`
}

// stateEvent is a detect.Event in progress, with names for its enums and
// the cause device's ID for its index.
type stateEvent struct {
	ID          uint64          `json:"id"`
	Kind        detect.Kind     `json:"kind"`
	Start       int64           `json:"start_ns"`
	Worst       float64         `json:"worst_pu,omitempty"`
	WorstVolts  float64         `json:"worst_v,omitempty"`
	Phases      detect.Phases   `json:"phases,omitempty"`
	Category    detect.Category `json:"category,omitempty"`
	Severity    detect.Severity `json:"severity"`
	Precision   time.Duration   `json:"precision_ns"`
	Shots       int             `json:"shots,omitempty"`
	Outcome     detect.Outcome  `json:"outcome,omitempty"`
	Cause       detect.Cause    `json:"cause,omitempty"`
	CauseDevice string          `json:"cause_device,omitempty"`
	Flags       detect.Flags    `json:"flags,omitempty"`
}

// saveState writes the carries of every shard to path, atomically (a
// temporary file renamed over the old one).
func (p *Pipeline) saveState(path string) error {
	devs := p.tab.Load().Devices
	f := stateFile{Version: stateVersion, Written: time.Now().UTC()}
	for _, sh := range p.shards {
		for _, c := range sh.det.Suspend() {
			if int(c.Index) >= len(devs) {
				continue
			}
			sd := stateDevice{ID: devs[c.Index].ID, Counter: c.Counter, LastVoltage: c.LastVoltage}
			for _, ev := range c.Open {
				se := stateEvent{
					ID: ev.ID, Kind: ev.Kind, Start: ev.Start, Worst: ev.Worst, WorstVolts: ev.WorstVolts,
					Phases: ev.Phases, Category: ev.Category, Severity: ev.Severity,
					Precision: ev.DurationPrecision, Shots: ev.Shots, Outcome: ev.Outcome,
					Cause: ev.Cause, Flags: ev.Flags,
				}
				if ev.Cause.Upstream() && int(ev.CauseDevice) < len(devs) {
					se.CauseDevice = devs[ev.CauseDevice].ID
				}
				sd.Open = append(sd.Open, se)
			}
			f.Devices = append(f.Devices, sd)
		}
	}
	b, err := json.MarshalIndent(&f, "", " ")
	if err != nil {
		return fmt.Errorf("save detection state: %w", err)
	}
	if err := atomicfile.Write(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save detection state: %w", err)
	}
	return nil
}

// loadState reads the state file at path and resumes each shard's
// detection from it, then removes the file (a crash later must not bring
// back events that have since ended). A missing file is no error. What
// cannot be resumed (a device no longer configured, a bad entry) is logged
// and skipped; an unreadable file is reported and ignored.
func (p *Pipeline) loadState(path string) error {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read detection state: %w", err)
	}
	defer fh.Close()
	if st, err := fh.Stat(); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("read detection state: %s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxStateBytes+1))
	if err != nil {
		return fmt.Errorf("read detection state %s: %w", path, err)
	}
	if len(b) > maxStateBytes {
		return fmt.Errorf("read detection state %s: larger than %d bytes", path, maxStateBytes)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("read detection state %s: %w", path, err)
	}
	if f.Version != stateVersion {
		return fmt.Errorf("read detection state %s: version %d, this feederd reads %d", path, f.Version, stateVersion)
	}
	tab := p.tab.Load()
	index := make(map[string]uint32, len(tab.Devices))
	for i := range tab.Devices {
		index[tab.Devices[i].ID] = uint32(i)
	}
	perShard := make([][]detect.Carry, len(p.shards))
	continued := 0
	for _, sd := range f.Devices {
		i, ok := index[sd.ID]
		if !ok {
			for _, se := range sd.Open {
				p.log.Warn("event in progress at the last shutdown not continued: device no longer configured",
					"state", path, "device", sd.ID, "kind", se.Kind, "id", se.ID)
			}
			continue
		}
		c := detect.Carry{Index: i, Counter: sd.Counter, LastVoltage: sd.LastVoltage}
		for _, se := range sd.Open {
			ev := detect.Event{
				ID: se.ID, Device: i, Kind: se.Kind, Stage: detect.StageStart, Start: se.Start,
				Worst: se.Worst, WorstVolts: se.WorstVolts, Phases: se.Phases, Category: se.Category,
				Severity: se.Severity, DurationPrecision: se.Precision, Shots: se.Shots,
				Outcome: se.Outcome, Cause: se.Cause, Flags: se.Flags,
			}
			if se.CauseDevice != "" {
				ev.CauseDevice = index[se.CauseDevice]
			}
			c.Open = append(c.Open, ev)
		}
		continued += len(c.Open)
		s := tab.byDev[i]
		perShard[s] = append(perShard[s], c)
	}
	for s, cs := range perShard {
		if err := p.shards[s].det.Resume(cs); err != nil {
			p.log.Warn("detection state partly resumed", "state", path, "err", err)
		}
		p.resumed = append(p.resumed, p.shards[s].det.OpenEvents()...)
	}
	p.log.Info("detection state resumed", "state", path, "written", f.Written, "events_in_progress", continued)
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove resumed detection state: %w", err)
	}
	return nil
}
