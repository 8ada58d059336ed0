package api

import (
	"slices"
	"time"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
	"github.com/feederd/feederd/internal/grid"
	"github.com/feederd/feederd/internal/poll"
	"github.com/feederd/feederd/internal/profile"
	"github.com/feederd/feederd/internal/topology"
)

// The JSON views of the API. Times are RFC 3339 in UTC; voltages in pu.
// openapi.json describes each; TestOpenAPI checks the two agree.

// OutageView is one outage as the desk sees it.
type OutageView struct {
	ID                string         `json:"id"`
	Feeder            string         `json:"feeder"`
	Device            string         `json:"device"`
	Status            string         `json:"status"`
	Start             string         `json:"start"`
	End               string         `json:"end,omitempty"`
	DurationSeconds   float64        `json:"duration_seconds"`
	CustomersAffected int            `json:"customers_affected"`
	CustomersOut      int            `json:"customers_out"`
	CustomersRestored int            `json:"customers_restored"`
	Critical          []CriticalView `json:"critical"`
	Sections          []string       `json:"sections"`
	Devices           []string       `json:"devices"`
	CommLost          []string       `json:"comm_lost"`
	Sustained         bool           `json:"sustained"`
	Steps             []StepView     `json:"steps"`
	ETR               string         `json:"etr,omitempty"`
	Acknowledged      *AckView       `json:"acknowledged,omitempty"`
	start, end        int64
}

// CriticalView is a critical customer.
type CriticalView struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// StepView is one restoration step.
type StepView struct {
	Time      string `json:"time"`
	Customers int    `json:"customers"`
	Sustained bool   `json:"sustained"`
}

// AckView says who acknowledged an outage.
type AckView struct {
	By string `json:"by"`
	At string `json:"at"`
}

func outageView(o *grid.Outage, notes map[string]Note) OutageView {
	v := OutageView{
		ID: o.ID, Feeder: o.Feeder, Device: o.Device, Status: string(o.Status),
		Start: isoTime(o.Start), End: isoTime(o.End),
		CustomersAffected: o.CustomersAffected, CustomersOut: o.CustomersOut, CustomersRestored: o.CustomersRestored(),
		Critical: []CriticalView{}, Sections: nonNil(o.Sections), Devices: nonNil(o.Devices), CommLost: nonNil(o.CommLost),
		Sustained: o.Sustained, Steps: []StepView{}, start: o.Start, end: o.End,
	}
	for _, c := range o.Critical {
		v.Critical = append(v.Critical, CriticalView{Name: c.Name, Kind: string(c.Kind)})
	}
	for _, s := range o.Steps {
		v.Steps = append(v.Steps, StepView{Time: isoTime(s.Time), Customers: s.Customers, Sustained: s.Sustained})
	}
	if o.End > 0 {
		v.DurationSeconds = time.Duration(o.End - o.Start).Seconds()
	}
	if n, ok := notes[o.ID]; ok {
		if !n.ETR.IsZero() {
			v.ETR = n.ETR.UTC().Format(time.RFC3339)
		}
		if n.AckBy != "" {
			v.Acknowledged = &AckView{By: n.AckBy, At: n.AckAt.UTC().Format(time.RFC3339)}
		}
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// withDuration fills the duration of an active outage as of now.
func (v *OutageView) withDuration(now int64) {
	if v.end == 0 && now > v.start {
		v.DurationSeconds = time.Duration(now - v.start).Round(time.Second).Seconds()
	}
}

// NoteView is a "note" stream message.
type NoteView struct {
	Outage       string   `json:"outage"`
	ETR          string   `json:"etr,omitempty"`
	Acknowledged *AckView `json:"acknowledged,omitempty"`
}

func noteView(id string, n Note) NoteView {
	v := NoteView{Outage: id}
	if !n.ETR.IsZero() {
		v.ETR = n.ETR.UTC().Format(time.RFC3339)
	}
	if n.AckBy != "" {
		v.Acknowledged = &AckView{By: n.AckBy, At: n.AckAt.UTC().Format(time.RFC3339)}
	}
	return v
}

// EventView is one detection event.
type EventView struct {
	ID          uint64  `json:"id"`
	Device      string  `json:"device"`
	Feeder      string  `json:"feeder"`
	Kind        string  `json:"kind"`
	Stage       string  `json:"stage"`
	Start       string  `json:"start"`
	End         string  `json:"end,omitempty"`
	Duration    float64 `json:"duration_seconds"`
	WorstPU     float64 `json:"worst_pu"`
	Phases      string  `json:"phases"`
	Category    string  `json:"category"`
	Severity    string  `json:"severity"`
	Cause       string  `json:"cause"`
	CauseDevice string  `json:"cause_device"`
	Shots       int     `json:"shots"`
	Outcome     string  `json:"outcome"`
	start       int64
}

func eventView(m *config.Model, ev *detect.Event) EventView {
	v := EventView{
		ID: ev.ID, Kind: ev.Kind.String(), Stage: ev.Stage.String(), Start: isoTime(ev.Start),
		Duration: ev.Duration().Seconds(), WorstPU: ev.Worst, Phases: ev.Phases.String(),
		Category: ev.Category.String(), Severity: ev.Severity.String(), Cause: ev.Cause.String(),
		Shots: ev.Shots, Outcome: ev.Outcome.String(), start: ev.Start,
	}
	if ev.Stage != detect.StageStart {
		v.End = isoTime(ev.End)
	}
	if int(ev.Device) < len(m.Devices) {
		d := m.Devices[ev.Device]
		v.Device, v.Feeder = d.ID, d.Feeder
	}
	if ev.Cause.Upstream() && int(ev.CauseDevice) < len(m.Devices) {
		v.CauseDevice = m.Devices[ev.CauseDevice].ID
	}
	return v
}

// FeederView is one feeder's state.
type FeederView struct {
	ID string `json:"id"`
	// State: normal, outage (customers out), comms_lost (a device does not
	// answer, no customer out) or unknown (nothing heard yet).
	State           string              `json:"state"`
	CustomersServed int                 `json:"customers_served"`
	CustomersOut    int                 `json:"customers_out"`
	Sections        []SectionView       `json:"sections"`
	Devices         []FeederDeviceView  `json:"devices"`
	Outages         []string            `json:"outages"`
	Bands           map[string]BandView `json:"bands"`
}

// BandView is one ANSI C84.1 range in pu.
type BandView struct {
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// SectionView is one section of a feeder.
type SectionView struct {
	ID        string         `json:"id"`
	FedBy     string         `json:"fed_by"`
	Customers int            `json:"customers"`
	Energized bool           `json:"energized"`
	Critical  []CriticalView `json:"critical"`
}

// FeederDeviceView is one device on the one-line diagram.
type FeederDeviceView struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Upstream string `json:"upstream"`
	Comm     string `json:"comm"`
	Energy   string `json:"energy"`
	Open     bool   `json:"open"`
	Lockout  bool   `json:"lockout"`
	// VoltagePU per phase measured (keys a, b, c); absent phases are left
	// out.
	VoltagePU map[string]float64 `json:"voltage_pu"`
}

var phaseKeys = [3]string{"a", "b", "c"}

func feederViews(m *config.Model, devs []detect.DeviceState, active []grid.Outage) []FeederView {
	var order []string
	byID := map[string]*FeederView{}
	add := func(id string) *FeederView {
		f := byID[id]
		if f == nil {
			f = &FeederView{ID: id, Sections: []SectionView{}, Devices: []FeederDeviceView{}, Outages: []string{},
				Bands: map[string]BandView{
					"range_a": {m.Detect.RangeA.Low, m.Detect.RangeA.High},
					"range_b": {m.Detect.RangeB.Low, m.Detect.RangeB.High},
				}}
			byID[id] = f
			order = append(order, id)
		}
		return f
	}
	sectionOut := map[string]bool{}
	for _, o := range active {
		f := add(o.Feeder)
		f.Outages = append(f.Outages, o.ID)
		f.CustomersOut += o.CustomersOut
		for _, s := range o.Sections {
			sectionOut[s] = true
		}
	}
	heard, lost := map[string]bool{}, map[string]bool{}
	for _, d := range m.Devices {
		if d.Feeder == "" {
			continue
		}
		f := add(d.Feeder)
		dv := FeederDeviceView{ID: d.ID, Kind: string(d.Kind), Upstream: d.Upstream, Comm: "unknown", Energy: "unknown",
			VoltagePU: map[string]float64{}}
		if int(d.Index) < len(devs) {
			st := devs[d.Index]
			dv.Comm, dv.Energy, dv.Open, dv.Lockout = st.Comm.String(), st.Energy.String(), st.Open, st.Lockout
			for p := range 3 {
				if st.Phases&(1<<p) != 0 && st.VoltageTime[p] > 0 {
					dv.VoltagePU[phaseKeys[p]] = round4(st.Voltage[p])
				}
			}
			heard[d.Feeder] = heard[d.Feeder] || st.Comm != detect.CommUnknown
			lost[d.Feeder] = lost[d.Feeder] || st.Comm == detect.CommLost
		}
		f.Devices = append(f.Devices, dv)
	}
	var topo []*topology.Feeder
	if m.Topology != nil {
		topo = m.Topology.Feeders
	}
	for _, cf := range topo {
		if len(cf.Sections) == 0 {
			continue
		}
		f := add(cf.ID)
		for _, s := range cf.Sections {
			sv := SectionView{ID: s.ID, FedBy: cf.Nodes[s.FedBy].ID, Customers: s.Customers, Energized: !sectionOut[s.ID], Critical: []CriticalView{}}
			for _, c := range s.Critical {
				sv.Critical = append(sv.Critical, CriticalView{Name: c.Name, Kind: string(c.Kind)})
			}
			f.Sections = append(f.Sections, sv)
			f.CustomersServed += s.Customers
		}
	}
	out := make([]FeederView, 0, len(order))
	slices.Sort(order)
	for _, id := range order {
		f := byID[id]
		switch {
		case f.CustomersOut > 0 || len(f.Outages) > 0:
			f.State = "outage"
		case lost[id]:
			f.State = "comms_lost"
		case heard[id]:
			f.State = "normal"
		default:
			f.State = "unknown"
		}
		out = append(out, *f)
	}
	return out
}

func round4(v float64) float64 {
	return float64(int64(v*10000+0.5)) / 10000
}

// DeviceView is one device's comms and data quality.
type DeviceView struct {
	ID                  string      `json:"id"`
	Feeder              string      `json:"feeder"`
	Link                string      `json:"link"`
	Kind                string      `json:"kind"`
	Comm                string      `json:"comm"`
	Up                  bool        `json:"up"`
	LastPoll            string      `json:"last_poll,omitempty"`
	LastGood            string      `json:"last_good,omitempty"`
	LatencySeconds      float64     `json:"latency_seconds"`
	ConsecutiveFailures int         `json:"consecutive_failures"`
	LastError           string      `json:"last_error,omitempty"`
	Points              []PointView `json:"points"`
}

// PointView is the quality of one point's last value.
type PointView struct {
	Name    string `json:"name"`
	Quality string `json:"quality"`
}

func deviceViews(m *config.Model, devs []detect.DeviceState, polls []poll.DeviceStatus) []DeviceView {
	out := make([]DeviceView, 0, len(m.Devices))
	for i, d := range m.Devices {
		v := DeviceView{ID: d.ID, Feeder: d.Feeder, Kind: string(d.Kind), Comm: "unknown", Points: []PointView{}}
		if d.Link != nil {
			v.Link = d.Link.ID
		}
		if int(d.Index) < len(devs) {
			v.Comm = devs[d.Index].Comm.String()
		}
		if i < len(polls) && polls[i].ID == d.ID {
			p := polls[i]
			v.Up, v.ConsecutiveFailures, v.LastError = p.Up, p.ConsecutiveFailures, p.LastError
			v.LatencySeconds = p.Latency.Seconds()
			if !p.LastPoll.IsZero() {
				v.LastPoll = p.LastPoll.UTC().Format(time.RFC3339Nano)
			}
			if !p.LastGood.IsZero() {
				v.LastGood = p.LastGood.UTC().Format(time.RFC3339Nano)
			}
			k := 0
			for _, pt := range d.Points {
				if pt.Type == profile.String {
					continue
				}
				q := "unknown"
				if k < len(p.Qualities) {
					q = p.Qualities[k].String()
				}
				v.Points = append(v.Points, PointView{Name: pt.Name, Quality: q})
				k++
			}
		}
		out = append(out, v)
	}
	return out
}

// ReliabilityView is IEEE 1366 over one period.
type ReliabilityView struct {
	Period  PeriodView    `json:"period"`
	Feeders []IndicesView `json:"feeders"`
	System  IndicesView   `json:"system"`
}

// PeriodView is the period the sums cover: the calendar year (UTC).
type PeriodView struct {
	Year  int    `json:"year"`
	Start string `json:"start"`
	End   string `json:"end"`
}

// IndicesView is the sums and indices of one feeder or the system.
type IndicesView struct {
	Feeder string  `json:"feeder,omitempty"`
	NT     int     `json:"customers_served"`
	CI     int     `json:"customers_interrupted"`
	CMI    float64 `json:"customer_minutes_interrupted"`
	MCI    int     `json:"customer_momentary_interruptions"`
	MCIe   int     `json:"customer_momentary_events"`
	SAIFI  float64 `json:"saifi"`
	SAIDI  float64 `json:"saidi_minutes"`
	CAIDI  float64 `json:"caidi_minutes"`
	MAIFI  float64 `json:"maifi"`
	MAIFIe float64 `json:"maifie"`
}

func indicesView(feeder string, a grid.Accumulator) IndicesView {
	ix := a.Indices()
	return IndicesView{Feeder: feeder, NT: a.NT, CI: a.CI, CMI: a.CMI, MCI: a.MCI, MCIe: a.MCIe,
		SAIFI: ix.SAIFI, SAIDI: ix.SAIDI, CAIDI: ix.CAIDI, MAIFI: ix.MAIFI, MAIFIe: ix.MAIFIe}
}

func reliabilityView(rel map[string]grid.Accumulator, now int64, only string) ReliabilityView {
	year := time.Unix(0, now).UTC().Year()
	v := ReliabilityView{Feeders: []IndicesView{}, Period: PeriodView{Year: year,
		Start: time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339),
		End:   time.Date(year+1, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)}}
	ids := make([]string, 0, len(rel))
	for id := range rel {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var sys grid.Accumulator
	for _, id := range ids {
		a := rel[id]
		if a.Year != year {
			// Sums of an earlier year: nothing in this period yet.
			a = grid.Accumulator{Year: year, NT: a.NT}
		}
		sys = sys.Add(a)
		if only == "" || only == id {
			v.Feeders = append(v.Feeders, indicesView(id, a))
		}
	}
	v.System = indicesView("", sys)
	return v
}
