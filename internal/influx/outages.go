package influx

import (
	"strconv"
	"strings"
	"time"

	"github.com/feederd/feederd/internal/grid"
)

// OutageMeasurement holds outages; ReliabilityMeasurement the IEEE 1366
// accumulators and indices of each feeder.
const (
	OutageMeasurement      = "feeder_outage"
	ReliabilityMeasurement = "feeder_reliability"
)

// AppendOutage appends the line of an outage as it is now:
//
//	feeder_outage,feeder=<id>,device=<id>,outage_id=<id>
//	    status="predicted|confirmed|restored",customers_out=<n>i,
//	    customers_affected=<n>i,customers_restored=<n>i,critical_out=<n>i,
//	    critical="<name (kind)>; ...",sections_out=<n>i,devices_out=<n>i,
//	    comm_lost=<n>i,steps=<n>i,start=<ms>i[,end=<ms>i,duration_s=<s>],
//	    sustained=true|false <start in ms>
//
// Like events, an outage is one point: every change rewrites it at its
// start time, so the last line written is the outage's final account.
func AppendOutage(dst []byte, o *grid.Outage) []byte {
	dst = AppendMeasurement(dst, OutageMeasurement)
	dst = append(dst, ",device="...)
	dst = AppendTag(dst, o.Device)
	dst = append(dst, ",feeder="...)
	dst = AppendTag(dst, o.Feeder)
	dst = append(dst, ",outage_id="...)
	dst = AppendTag(dst, o.ID)
	dst = append(dst, ' ')
	dst = AppendStringField(dst, "status", string(o.Status))
	dst = appendInt(dst, "customers_out", o.CustomersOut)
	dst = appendInt(dst, "customers_affected", o.CustomersAffected)
	dst = appendInt(dst, "customers_restored", o.CustomersRestored())
	dst = appendInt(dst, "critical_out", len(o.Critical))
	if len(o.Critical) > 0 {
		names := make([]string, len(o.Critical))
		for i, c := range o.Critical {
			names[i] = c.Name + " (" + string(c.Kind) + ")"
		}
		dst = AppendStringField(append(dst, ','), "critical", strings.Join(names, "; "))
	}
	dst = appendInt(dst, "sections_out", len(o.Sections))
	dst = appendInt(dst, "devices_out", len(o.Devices))
	dst = appendInt(dst, "comm_lost", len(o.CommLost))
	dst = appendInt(dst, "steps", len(o.Steps))
	dst = appendInt(dst, "start", int(o.Start/1e6))
	if o.End != 0 {
		dst = appendInt(dst, "end", int(o.End/1e6))
		dst = append(dst, ",duration_s="...)
		dst = strconv.AppendFloat(dst, time.Duration(o.End-o.Start).Seconds(), 'g', -1, 64)
	}
	dst = append(dst, ",sustained="...)
	dst = strconv.AppendBool(dst, o.Sustained)
	dst = append(dst, ' ')
	return appendTime(dst, o.Start)
}

// AppendReliability appends a feeder's IEEE 1366 sums and indices at t:
//
//	feeder_reliability,feeder=<id> year=<n>i,nt=<n>i,ci=<n>i,cmi=<f>,mci=<n>i,
//	    mcie=<n>i,saifi=<f>,saidi=<f>,caidi=<f>,maifi=<f>,maifie=<f> <t in ms>
//
// The sums add up across feeders, so system indices are sum(ci)/sum(nt) and
// so on over the last point of each feeder.
func AppendReliability(dst []byte, feeder string, a grid.Accumulator, t int64) []byte {
	dst = AppendMeasurement(dst, ReliabilityMeasurement)
	dst = append(dst, ",feeder="...)
	dst = AppendTag(dst, feeder)
	dst = append(dst, " year="...)
	dst = strconv.AppendInt(dst, int64(a.Year), 10)
	dst = append(dst, 'i')
	dst = appendInt(dst, "nt", a.NT)
	dst = appendInt(dst, "ci", a.CI)
	dst = appendFloat(dst, "cmi", a.CMI)
	dst = appendInt(dst, "mci", a.MCI)
	dst = appendInt(dst, "mcie", a.MCIe)
	ix := a.Indices()
	dst = appendFloat(dst, "saifi", ix.SAIFI)
	dst = appendFloat(dst, "saidi", ix.SAIDI)
	dst = appendFloat(dst, "caidi", ix.CAIDI)
	dst = appendFloat(dst, "maifi", ix.MAIFI)
	dst = appendFloat(dst, "maifie", ix.MAIFIe)
	dst = append(dst, ' ')
	return appendTime(dst, t)
}

func appendInt(dst []byte, key string, v int) []byte {
	dst = append(dst, ',')
	dst = append(dst, key...)
	dst = append(dst, '=')
	dst = strconv.AppendInt(dst, int64(v), 10)
	return append(dst, 'i')
}

func appendFloat(dst []byte, key string, v float64) []byte {
	dst = append(dst, ',')
	dst = append(dst, key...)
	dst = append(dst, '=')
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}
