package app

import (
	"reflect"
	"testing"
	"time"

	"github.com/feederd/feederd/internal/config"
)

// TestEverySettingHasAReloadRule: every setting of the blocks a reload
// treats as a whole (influx, http, pipeline, alerting, poll) is either
// refused when it changes (restartKeys), kept until a restart (keepSizes),
// or applied through the links and devices it is copied into. A field added
// to the model without a decision fails here, so a reload cannot ignore it
// silently. Fields of a simple kind are also changed, to check that the
// refusal really names them.
func TestEverySettingHasAReloadRule(t *testing.T) {
	const (
		refused = "refused"
		kept    = "kept until restart"
		applied = "applied through links and devices"
	)
	rules := map[string]string{
		"Influx.URL": refused, "Influx.Org": refused, "Influx.Bucket": refused, "Influx.Token": refused,
		"Influx.BatchSize": refused, "Influx.FlushInterval": refused, "Influx.QueueSize": kept,
		"Influx.Timeout": refused, "Influx.Measurement": refused, "Influx.Gzip": refused,
		"Influx.SpoolBudget": refused, "Influx.SpoolFsync": refused, "Influx.Disabled": refused,
		"HTTP.Listen": refused, "HTTP.Token": refused, "HTTP.TLSCert": refused, "HTTP.TLSKey": refused,
		"Pipeline.Shards": refused, "Pipeline.RingSize": kept, "Pipeline.DropPolicy": refused,
		"Alerting.Alertmanagers": refused, "Alerting.Webhooks": refused, "Alerting.ResendInterval": refused,
		"Alerting.ActiveFor": refused, "Alerting.ResolvedFor": refused, "Alerting.Timeout": refused,
		"Alerting.QueueSize": refused,
		// Copied into every link and device by config.Load, or compared by
		// the poller for its kept links (poll/reload.go).
		"Poll.Interval": applied, "Poll.Timeout": applied, "Poll.BackoffInitial": applied,
		"Poll.BackoffMax": applied, "Poll.MaxGap": applied, "Poll.StaleAfter": applied, "Poll.SlotTime": applied,
	}
	seen := map[string]bool{}
	for _, block := range []string{"Influx", "HTTP", "Pipeline", "Alerting", "Poll"} {
		typ := reflect.TypeFor[config.Model]()
		f, ok := typ.FieldByName(block)
		if !ok {
			t.Fatalf("config.Model has no field %s", block)
		}
		for i := range f.Type.NumField() {
			name := block + "." + f.Type.Field(i).Name
			seen[name] = true
			rule, ok := rules[name]
			if !ok {
				t.Errorf("%s has no reload rule: refuse it in restartKeys, keep it in keepSizes, or apply it, and say so here", name)
				continue
			}
			running, next := &config.Model{}, &config.Model{}
			if !change(reflect.ValueOf(next).Elem().FieldByName(block).Field(i)) {
				continue // not a simple kind: the table above is the check
			}
			keys := restartChanges(running, next)
			switch rule {
			case refused:
				if len(keys) != 1 {
					t.Errorf("%s changed: restartChanges = %q, want the key named once", name, keys)
				}
			default:
				if len(keys) != 0 {
					t.Errorf("%s is %s, but restartChanges refuses it as %q", name, rule, keys)
				}
			}
		}
	}
	for name := range rules {
		if !seen[name] {
			t.Errorf("rule for %s, which the model no longer has", name)
		}
	}
}

// change sets v, the zero value of a simple kind, to something else and
// reports whether it could.
func change(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		v.SetString("changed")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		if v.Type() == reflect.TypeFor[time.Duration]() {
			v.SetInt(int64(time.Second))
		} else {
			v.SetInt(7)
		}
	case reflect.Uint16:
		v.SetUint(7)
	default:
		return false
	}
	return true
}
