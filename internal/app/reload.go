package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/feederd/feederd/internal/api"
	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/pipeline"
	"github.com/feederd/feederd/internal/poll"
)

// A reload makes the running daemon follow the configuration file as it is
// now, or changes nothing:
//
//  1. The file is loaded and checked exactly as at start (config.Load, then
//     this instance's shard); an invalid file is refused with its errors.
//  2. Settings that only a restart applies (restartKeys) must be
//     unchanged, or the reload is refused naming them.
//  3. The poller builds the new links' clients (poll.Poller.Prepare).
//  4. The poller parks every link at a poll boundary, within the pause
//     deadline, connections kept.
//  5. The pipeline drains its rings and follows the new model, keeping the
//     detection state of unchanged devices (applyPipeline). If it fails,
//     the poller resumes with its old links: nothing changed.
//  6. The desk, its live view and the event alerts take the new model.
//  7. The poller stops removed and changed links, moves kept ones to their
//     new device indexes and starts the new ones, then resumes.
//
// One goroutine (the "reload" stage) runs reloads one at a time, asked by
// SIGHUP (Options.Reload) or POST /-/reload.

// restartKeys are the settings a reload cannot change, each read from a
// model; a reload that changes one is refused.
var restartKeys = []struct {
	key string
	get func(m *config.Model) any
}{
	{"influx (the block)", func(m *config.Model) any { return m.Influx.Disabled }},
	{"influx.url", func(m *config.Model) any { return m.Influx.URL }},
	{"influx.org", func(m *config.Model) any { return m.Influx.Org }},
	{"influx.bucket", func(m *config.Model) any { return m.Influx.Bucket }},
	{"influx.token_env/token_file", func(m *config.Model) any { return m.Influx.Token }},
	{"influx.batch_size", func(m *config.Model) any { return m.Influx.BatchSize }},
	{"influx.flush_interval", func(m *config.Model) any { return m.Influx.FlushInterval }},
	{"influx.timeout", func(m *config.Model) any { return m.Influx.Timeout }},
	{"influx.measurement", func(m *config.Model) any { return m.Influx.Measurement }},
	{"influx.gzip", func(m *config.Model) any { return m.Influx.Gzip }},
	{"influx.spool_budget_mb", func(m *config.Model) any { return m.Influx.SpoolBudget }},
	{"influx.spool_fsync", func(m *config.Model) any { return m.Influx.SpoolFsync }},
	{"http.listen", func(m *config.Model) any { return m.HTTP.Listen }},
	{"http.token_env/token_file", func(m *config.Model) any { return m.HTTP.Token }},
	{"http.tls_cert_file", func(m *config.Model) any { return m.HTTP.TLSCert }},
	{"http.tls_key_file", func(m *config.Model) any { return m.HTTP.TLSKey }},
	{"pipeline.shards", func(m *config.Model) any { return m.Pipeline.Shards }},
	{"pipeline.drop_policy", func(m *config.Model) any { return m.Pipeline.DropPolicy }},
	{"alerting.alertmanagers", func(m *config.Model) any { return m.Alerting.Alertmanagers }},
	{"alerting.webhooks", func(m *config.Model) any { return m.Alerting.Webhooks }},
	{"alerting.resend_interval", func(m *config.Model) any { return m.Alerting.ResendInterval }},
	{"alerting.active_for", func(m *config.Model) any { return m.Alerting.ActiveFor }},
	{"alerting.resolved_for", func(m *config.Model) any { return m.Alerting.ResolvedFor }},
	{"alerting.timeout", func(m *config.Model) any { return m.Alerting.Timeout }},
	{"alerting.queue_size", func(m *config.Model) any { return m.Alerting.QueueSize }},
}

// restartChanges lists the restart-only settings that differ between the
// running model and next.
func restartChanges(running, next *config.Model) []string {
	var keys []string
	for _, k := range restartKeys {
		if !reflect.DeepEqual(k.get(running), k.get(next)) {
			keys = append(keys, k.key)
		}
	}
	return keys
}

// keepSizes gives next the running ring and queue sizes. Their defaults
// follow the fleet's size (config.Load), so adding devices may change them
// without the file saying so; the sizes in use stay until a restart. It
// returns the keys whose value it kept.
func keepSizes(running, next *config.Model) []string {
	var kept []string
	if next.Pipeline.RingSize != running.Pipeline.RingSize {
		kept = append(kept, fmt.Sprintf("pipeline.ring_size (%d kept, %d at the next restart)", running.Pipeline.RingSize, next.Pipeline.RingSize))
		next.Pipeline.RingSize = running.Pipeline.RingSize
	}
	if next.Influx.QueueSize != running.Influx.QueueSize {
		kept = append(kept, fmt.Sprintf("influx.queue_size (%d kept, %d at the next restart)", running.Influx.QueueSize, next.Influx.QueueSize))
		next.Influx.QueueSize = running.Influx.QueueSize
	}
	return kept
}

// reloadSummary is what a reload changed: the answer of POST /-/reload and
// the fields of its log line. Lists are device or link IDs in model order.
type reloadSummary struct {
	Config         string   `json:"config"`
	DevicesAdded   []string `json:"devices_added"`
	DevicesRemoved []string `json:"devices_removed"`
	DevicesChanged []string `json:"devices_changed"`
	// DevicesUnchanged counts the devices whose settings are all as they
	// were.
	DevicesUnchanged int      `json:"devices_unchanged"`
	LinksStarted     []string `json:"links_started"`
	LinksStopped     []string `json:"links_stopped"`
	LinksRestarted   []string `json:"links_restarted"`
	LinksKept        []string `json:"links_kept"`
	// DetectionKept are the devices whose detection state went on;
	// DetectionFresh those that start afresh (new or changed).
	DetectionKept  []string `json:"detection_kept"`
	DetectionFresh []string `json:"detection_fresh"`
	// KeptUntilRestart are sizes whose running value stays (keepSizes).
	KeptUntilRestart []string `json:"kept_until_restart"`
}

// diffDevices fills the device lists of s from two models.
func (s *reloadSummary) diffDevices(running, next *config.Model) {
	was := map[string]*config.Device{}
	for _, d := range running.Devices {
		was[d.ID] = d
	}
	s.DevicesAdded, s.DevicesRemoved, s.DevicesChanged = []string{}, []string{}, []string{}
	for _, d := range next.Devices {
		o := was[d.ID]
		switch {
		case o == nil:
			s.DevicesAdded = append(s.DevicesAdded, d.ID)
		case !sameDevice(o, d):
			s.DevicesChanged = append(s.DevicesChanged, d.ID)
		default:
			s.DevicesUnchanged++
		}
		delete(was, d.ID)
	}
	for _, d := range running.Devices {
		if was[d.ID] != nil {
			s.DevicesRemoved = append(s.DevicesRemoved, d.ID)
		}
	}
}

// sameDevice compares every setting of two devices but their index (their
// place in the file) and what they point to, compared by ID and content.
func sameDevice(a, b *config.Device) bool {
	ac, bc := *a, *b
	ac.Index, bc.Index = 0, 0
	ac.Link, bc.Link = nil, nil
	ac.Profile, bc.Profile = nil, nil
	return linkID(a) == linkID(b) && profileName(a) == profileName(b) && reflect.DeepEqual(ac, bc)
}

func linkID(d *config.Device) string {
	if d.Link == nil {
		return ""
	}
	return d.Link.ID
}

func profileName(d *config.Device) string {
	if d.Profile == nil {
		return ""
	}
	return d.Profile.Name
}

// reloadMetrics say how the last reload went.
type reloadMetrics struct {
	ok      prometheus.Gauge
	okTime  prometheus.Gauge
	success prometheus.Counter
	failure prometheus.Counter
}

func newReloadMetrics(reg prometheus.Registerer, now time.Time) *reloadMetrics {
	f := promauto.With(reg)
	m := &reloadMetrics{
		ok: f.NewGauge(prometheus.GaugeOpts{
			Name: "feederd_config_last_reload_successful",
			Help: "1 if the last configuration reload succeeded (or none was asked for since the start), 0 if it changed nothing because it failed.",
		}),
		okTime: f.NewGauge(prometheus.GaugeOpts{
			Name: "feederd_config_last_reload_success_timestamp_seconds",
			Help: "When the running configuration was loaded: the last successful reload, or the start.",
		}),
	}
	total := f.NewCounterVec(prometheus.CounterOpts{
		Name: "feederd_config_reloads_total",
		Help: "Configuration reloads asked for (SIGHUP, POST /-/reload), by result: success or failure (nothing changed).",
	}, []string{"result"})
	m.success, m.failure = total.WithLabelValues("success"), total.WithLabelValues("failure")
	m.ok.Set(1)
	m.okTime.Set(float64(now.UnixNano()) / 1e9)
	return m
}

// reloadRequest asks the reload stage for one reload; the result comes on
// reply (buffered).
type reloadRequest struct {
	reply chan reloadResult
}

type reloadResult struct {
	sum *reloadSummary
	err error
}

// reloader is the reload stage: run owns every reload and the running
// model.
type reloader struct {
	log          *slog.Logger
	path         string
	load         func(path string) (*config.Model, error)
	pauseTimeout time.Duration
	now          func() time.Time
	metrics      *reloadMetrics

	poller *poll.Poller
	pipe   *pipeline.Pipeline
	srv    *api.Server
	live   *api.Live
	events *eventAlerts // nil without alerting

	// signals carries SIGHUP's requests (Options.Reload); requests the
	// API's. done is closed when run ends.
	signals  <-chan chan error
	requests chan reloadRequest
	done     chan struct{}

	running *config.Model // owned by run
}

// run serves reload requests until ctx ends.
func (r *reloader) run(ctx context.Context) error {
	defer close(r.done)
	for {
		select {
		case <-ctx.Done():
			return nil
		case reply := <-r.signals:
			_, err := r.reload()
			if reply != nil {
				reply <- err
			}
		case req := <-r.requests:
			sum, err := r.reload()
			req.reply <- reloadResult{sum, err}
		}
	}
}

// viaAPI is api.Options.Reload: it asks run for a reload and waits for it.
func (r *reloader) viaAPI(ctx context.Context) (any, error) {
	req := reloadRequest{reply: make(chan reloadResult, 1)}
	select {
	case r.requests <- req:
	case <-r.done:
		return nil, errors.New("feederd is stopping: nothing was reloaded")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Once taken, the reload runs to its end whatever the client does.
	res := <-req.reply
	return res.sum, res.err
}

// reload runs one reload and records its result.
func (r *reloader) reload() (*reloadSummary, error) {
	r.log.Info("reloading the configuration", "config", r.path)
	sum, err := r.apply()
	if err != nil {
		r.metrics.ok.Set(0)
		r.metrics.failure.Inc()
		r.log.Error("configuration reload failed: the running configuration is kept", "config", r.path, "err", err)
		return nil, err
	}
	r.metrics.ok.Set(1)
	r.metrics.okTime.Set(float64(r.now().UnixNano()) / 1e9)
	r.metrics.success.Inc()
	r.log.Info("configuration reloaded", "config", r.path,
		"devices_added", sum.DevicesAdded, "devices_removed", sum.DevicesRemoved, "devices_changed", sum.DevicesChanged,
		"devices_unchanged", sum.DevicesUnchanged,
		"links_started", sum.LinksStarted, "links_stopped", sum.LinksStopped, "links_restarted", sum.LinksRestarted,
		"links_kept", len(sum.LinksKept), "detection_kept", len(sum.DetectionKept), "kept_until_restart", sum.KeptUntilRestart)
	return sum, nil
}

// apply is steps 1 to 7 of a reload (see the top of this file).
func (r *reloader) apply() (*reloadSummary, error) {
	next, err := r.load(r.path)
	if err != nil {
		return nil, fmt.Errorf("reload refused, nothing was reloaded: %w", err)
	}
	if keys := restartChanges(r.running, next); len(keys) > 0 {
		them := "it"
		if len(keys) > 1 {
			them = "them"
		}
		return nil, fmt.Errorf("%s changed: restart feederd to apply %s; nothing was reloaded", strings.Join(keys, ", "), them)
	}
	sum := &reloadSummary{Config: r.path, KeptUntilRestart: keepSizes(r.running, next)}
	sum.diffDevices(r.running, next)
	upd, err := r.poller.Prepare(next)
	if err != nil {
		return nil, fmt.Errorf("reload refused, nothing was reloaded: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.pauseTimeout)
	defer cancel()
	if err := r.poller.Pause(ctx); err != nil {
		return nil, fmt.Errorf("nothing was reloaded: %w", err)
	}
	change, err := applyPipeline(ctx, r.pipe, next)
	if err != nil {
		r.poller.Resume()
		return nil, fmt.Errorf("pipeline: %w; nothing was reloaded", err)
	}
	// The desk and the event alerts take the new model before the pollers
	// resume, so that the events they still hold are read with the old
	// device indexes and the new ones with the new. Past the deadline they
	// go on with the old one (logged): names on the desk or in alerts may
	// then be wrong until the next reload.
	r.srv.SetModel(next)
	if err := r.live.SetModel(ctx, next); err != nil {
		r.log.Error("reload", "err", err)
	}
	if r.events != nil {
		if err := r.events.setModel(ctx, next); err != nil {
			r.log.Error("reload", "err", err)
		}
	}
	// Apply fails only when the poller is not paused, which it is.
	if err := r.poller.Apply(upd); err != nil {
		r.log.Error("poller reload", "err", err)
	}
	r.poller.Resume()
	r.running = next
	sum.LinksStarted, sum.LinksStopped = orEmpty(upd.Started), orEmpty(upd.Stopped)
	sum.LinksRestarted, sum.LinksKept = orEmpty(upd.Restarted), orEmpty(upd.Kept)
	sum.DetectionKept, sum.DetectionFresh = orEmpty(change.Kept), orEmpty(change.Fresh)
	sum.KeptUntilRestart = orEmpty(sum.KeptUntilRestart)
	return sum, nil
}

// orEmpty makes a nil list an empty one, so that JSON says [].
func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clip(s)
}
