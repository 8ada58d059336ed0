package influx

import (
	"strconv"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/detect"
)

// EventMeasurement holds detection events.
const EventMeasurement = "feeder_event"

// EventEncoder appends detection events as line protocol:
//
//	feeder_event,device=<id>,feeder=<id>,kind=<kind>[,phase=<A|B|C>],severity=<severity>
//	    id=<n>i,stage="start|end|instant",category="<category>",start=<ms>i,end=<ms>i,
//	    duration_s=<float>,precision_s=<float>,phases="<ABC>",worst_pu=<float>,worst_v=<float>,
//	    shots=<n>i,outcome="<outcome>",cause="<cause>",cause_device="<id>",flags="<a|b>"
//	    <start in ms>
//
// The timestamp is the event's start for every stage, and the tags do not
// change between stages, so the end line of an event overwrites its start
// line in InfluxDB: each event is one point, complete once it has ended.
// That is why the phases of a sag, swell or interruption are a field (a sag
// that starts on B and spreads to A ends as "AB"), while a band event, which
// belongs to one phase for its life, carries it as the tag phase (two phases
// can leave a band at the same sample). Fields that do not apply (end before
// the end, worst values of events without a voltage) are left out. An
// EventEncoder is immutable and safe for concurrent use.
type EventEncoder struct {
	prefix [][]byte // per device: "feeder_event,device=..,feeder=..,kind="
	ids    []string // device IDs by index, for cause_device
}

// NewEventEncoder builds the per-device prefixes of m.
func NewEventEncoder(m *config.Model) *EventEncoder {
	e := &EventEncoder{prefix: make([][]byte, len(m.Devices)), ids: make([]string, len(m.Devices))}
	for i, d := range m.Devices {
		b := AppendMeasurement(nil, EventMeasurement)
		b = append(b, ",device="...)
		b = AppendTag(b, d.ID)
		b = append(b, ",feeder="...)
		b = AppendTag(b, d.Feeder)
		b = append(b, ",kind="...)
		e.prefix[i] = b
		e.ids[i] = d.ID
	}
	return e
}

// Append appends the line of ev, ending in '\n'. An event of a device that
// is not in the model appends nothing.
func (e *EventEncoder) Append(dst []byte, ev *detect.Event) []byte {
	if int(ev.Device) >= len(e.prefix) {
		return dst
	}
	dst = append(dst, e.prefix[ev.Device]...)
	dst = append(dst, ev.Kind.String()...)
	if ev.Kind == detect.KindBand && ev.Phases != 0 {
		dst = append(dst, ",phase="...)
		dst = append(dst, ev.Phases.String()...)
	}
	dst = append(dst, ",severity="...)
	dst = append(dst, ev.Severity.String()...)
	dst = append(dst, " id="...)
	dst = strconv.AppendUint(dst, ev.ID, 10)
	dst = append(dst, "i,stage=\""...)
	dst = append(dst, ev.Stage.String()...)
	dst = append(dst, '"')
	if ev.Category != detect.CategoryNone {
		dst = append(dst, ",category=\""...)
		dst = append(dst, ev.Category.String()...)
		dst = append(dst, '"')
	}
	dst = append(dst, ",start="...)
	dst = strconv.AppendInt(dst, ev.Start/1e6, 10)
	dst = append(dst, 'i')
	if ev.Stage == detect.StageEnd {
		dst = append(dst, ",end="...)
		dst = strconv.AppendInt(dst, ev.End/1e6, 10)
		dst = append(dst, "i,duration_s="...)
		dst = strconv.AppendFloat(dst, ev.Duration().Seconds(), 'g', -1, 64)
	}
	dst = append(dst, ",precision_s="...)
	dst = strconv.AppendFloat(dst, ev.DurationPrecision.Seconds(), 'g', -1, 64)
	if ev.Phases != 0 {
		dst = append(dst, ",phases=\""...)
		dst = append(dst, ev.Phases.String()...)
		dst = append(dst, '"')
	}
	if hasWorst(ev.Kind) {
		dst = append(dst, ",worst_pu="...)
		dst = strconv.AppendFloat(dst, ev.Worst, 'g', 6, 64)
		dst = append(dst, ",worst_v="...)
		dst = strconv.AppendFloat(dst, ev.WorstVolts, 'g', 6, 64)
	}
	if ev.Shots != 0 {
		dst = append(dst, ",shots="...)
		dst = strconv.AppendInt(dst, int64(ev.Shots), 10)
		dst = append(dst, 'i')
	}
	if ev.Outcome != detect.OutcomeNone {
		dst = append(dst, ",outcome=\""...)
		dst = append(dst, ev.Outcome.String()...)
		dst = append(dst, '"')
	}
	if ev.Cause != detect.CauseNone {
		dst = append(dst, ",cause=\""...)
		dst = append(dst, ev.Cause.String()...)
		dst = append(dst, '"')
		if ev.Cause.Upstream() && int(ev.CauseDevice) < len(e.ids) {
			dst = AppendStringField(append(dst, ','), "cause_device", e.ids[ev.CauseDevice])
		}
	}
	if ev.Flags != 0 {
		dst = AppendStringField(append(dst, ','), "flags", ev.Flags.String())
	}
	dst = append(dst, ' ')
	return appendTime(dst, ev.Start)
}

// hasWorst reports whether events of kind k carry a worst voltage.
func hasWorst(k detect.Kind) bool {
	switch k {
	case detect.KindSag, detect.KindSwell, detect.KindInterruption, detect.KindBand:
		return true
	}
	return false
}
