// Package alert delivers alerts to Prometheus Alertmanager (API v2) and to
// JSON webhooks. It exists so that the code that decides an alert (the
// comms bridge, the outage logic) only says "this is firing" and "this has
// ended at t", and never deals with what delivery needs: re-sending, a
// receiver that is down, several receivers, order, signatures. It knows
// nothing about grids.
//
// What a Dispatcher promises:
//
//   - Every change (an alert fired, its annotations changed, it resolved) is
//     sent at once to every receiver, in the order of the calls, each change
//     once per receiver when the receiver answers 2xx. A receiver that
//     answers 408, 429 or 5xx, or does not answer within the timeout, gets
//     the same changes again after a backoff (250 ms doubling to 10 s, each
//     wait drawn between half and all of the step: internal/backoff) until
//     it accepts them; changes made meanwhile queue behind them. Any other answer rejects them: they are logged, counted as
//     rejected and not sent again. A timeout may have reached the receiver,
//     so a webhook receiver can see a change twice: each alert carries
//     fingerprint and updatedAt to tell.
//   - Alertmanager forgets an alert at its endsAt and keeps nothing across a
//     restart, so Alertmanager receivers also get every active alert every
//     ResendInterval with endsAt = now + ActiveFor, and every resolved alert
//     with its true endsAt for ResolvedFor after it resolved. After a
//     receiver was unreachable, they get them all as soon as it answers
//     again, behind the changes it missed. Webhook receivers get changes
//     only.
//   - Changes wait in one bounded log of QueueSize changes that every
//     receiver reads at its own position. A receiver that falls further
//     behind loses its oldest unsent changes, counted in
//     feederd_alert_dropped_total and logged at the first drop; for an
//     Alertmanager the re-sends then restore the current state.
//   - Set and Resolve never wait for the network: they take a mutex that is
//     held only for in-memory work.
//   - Receivers are independent: a dead one never delays the others.
package alert

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Alert is one alert as its producer states it.
type Alert struct {
	// Labels identify the alert: a Set with the labels of an active alert
	// updates that alert. They must hold a non-empty "alertname"; keep
	// them stable (alertname, feeder, device, an event or outage id,
	// severity) and put what changes into Annotations.
	Labels map[string]string
	// Annotations carry what changes: summary, customers_affected, ...
	Annotations map[string]string
	// StartsAt is when the condition began; zero means when Set is called.
	// An update keeps the start of the active alert.
	StartsAt time.Time
	// EndsAt is zero while the alert is active and set by Resolve; Set
	// ignores it.
	EndsAt time.Time
	// GeneratorURL links back to what raised the alert; optional.
	GeneratorURL string
}

// Sink is what producers of alerts call. Both methods return at once;
// delivery happens elsewhere.
//
// Set fires the alert or, when an active alert has the same labels,
// replaces its annotations and generator URL; a Set that changes nothing
// sends nothing. A Set with the labels of a resolved alert fires it anew.
//
// Resolve ends the active alert with these labels at at, the time the
// condition really ended (zero: now). An alert the sink does not know, such
// as one raised before a restart, is sent resolved all the same, with
// StartsAt = at and no annotations; resolving a resolved alert does nothing.
type Sink interface {
	Set(a Alert)
	Resolve(labels map[string]string, at time.Time)
}

// Discard is a Sink that drops everything: what producers get when no
// receiver is configured.
type Discard struct{}

// Set does nothing.
func (Discard) Set(Alert) {}

// Resolve does nothing.
func (Discard) Resolve(map[string]string, time.Time) {}

// Kind of receiver.
type Kind uint8

const (
	// Alertmanager receivers get POST URL/api/v2/alerts with a JSON array
	// of alerts, and re-sends.
	Alertmanager Kind = iota
	// Webhook receivers get POST URL with a JSON object (README, "Alerts"),
	// optionally signed, and changes only.
	Webhook
)

func (k Kind) String() string {
	if k == Webhook {
		return "webhook"
	}
	return "alertmanager"
}

// Receiver is one destination of alerts.
type Receiver struct {
	Kind Kind
	// Name labels the receiver's metrics and log lines. It must be unique
	// and [A-Za-z0-9_.-]+: never the URL, which may carry a token.
	Name string
	// URL is an Alertmanager's base URL (http://host:9093, with a path
	// prefix if it serves under one) or the webhook's URL.
	URL string
	// Secret, when set on a webhook, signs each body: header
	// X-Feederd-Signature: sha256=<hex of HMAC-SHA256(Secret, body)>.
	Secret []byte
}

// Options configure a Dispatcher. DefaultOptions gives every default;
// callers set Receivers, Logger and Registerer.
type Options struct {
	Receivers []Receiver
	// ResendInterval is how often Alertmanager receivers get every active
	// and recently resolved alert again.
	ResendInterval time.Duration
	// ActiveFor is how far ahead of each send an active alert's endsAt is
	// set for Alertmanager; it must exceed ResendInterval.
	ActiveFor time.Duration
	// ResolvedFor is how long a resolved alert is still re-sent; then it is
	// forgotten. 0: sent once.
	ResolvedFor time.Duration
	// Timeout bounds each request.
	Timeout time.Duration
	// QueueSize is the number of changes held for receivers that are
	// behind.
	QueueSize int
	// MaxBatch is the most alerts in one request.
	MaxBatch int
	// BackoffInitial and BackoffMax bound the wait before a failed request
	// is tried again.
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	// FlushTimeout bounds what Run still sends after its context ended.
	FlushTimeout time.Duration
	// Sender names the sending program in webhook bodies.
	Sender     string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock of StartsAt defaults, endsAt and updatedAt stamps
	// and of ResolvedFor.
	Now func() time.Time
	// Transport carries the requests; nil: a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
}

// DefaultOptions returns the defaults of DOMAIN.md's Alertmanager contract.
func DefaultOptions() Options {
	return Options{
		ResendInterval: time.Minute,
		ActiveFor:      4 * time.Minute,
		ResolvedFor:    15 * time.Minute,
		Timeout:        10 * time.Second,
		QueueSize:      10000,
		MaxBatch:       256,
		BackoffInitial: 250 * time.Millisecond,
		BackoffMax:     10 * time.Second,
		FlushTimeout:   10 * time.Second,
		Sender:         "feederd",
		Now:            time.Now,
	}
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func (o *Options) validate() error {
	var errs []error
	if len(o.Receivers) == 0 {
		errs = append(errs, errors.New("no receivers"))
	}
	names := map[string]bool{}
	for i, r := range o.Receivers {
		switch {
		case !validName.MatchString(r.Name):
			errs = append(errs, fmt.Errorf("receiver %d: invalid name %q", i, r.Name))
		case names[r.Name]:
			errs = append(errs, fmt.Errorf("receiver %d: duplicate name %q", i, r.Name))
		}
		names[r.Name] = true
		if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("receiver %s: url is not http(s)://host...", r.Name))
		}
		if r.Kind != Alertmanager && r.Kind != Webhook {
			errs = append(errs, fmt.Errorf("receiver %s: unknown kind %d", r.Name, r.Kind))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"resend interval", o.ResendInterval}, {"active for", o.ActiveFor}, {"timeout", o.Timeout},
		{"initial backoff", o.BackoffInitial}, {"maximum backoff", o.BackoffMax}, {"flush timeout", o.FlushTimeout},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s %v is not positive", d.name, d.v))
		}
	}
	if o.ResolvedFor < 0 {
		errs = append(errs, fmt.Errorf("resolved for %v is negative", o.ResolvedFor))
	}
	if o.ActiveFor <= o.ResendInterval {
		errs = append(errs, fmt.Errorf("active for %v must exceed the resend interval %v", o.ActiveFor, o.ResendInterval))
	}
	if o.QueueSize < 1 {
		errs = append(errs, fmt.Errorf("queue size %d is not positive", o.QueueSize))
	}
	if o.MaxBatch < 1 {
		errs = append(errs, fmt.Errorf("max batch %d is not positive", o.MaxBatch))
	}
	if o.Logger == nil || o.Registerer == nil || o.Now == nil {
		errs = append(errs, errors.New("logger, registerer and clock are required"))
	}
	return errors.Join(errs...)
}

// Dispatcher keeps the state of every alert and delivers it to the
// receivers. Set, Resolve and Ready are safe for concurrent use; Run is
// called once.
type Dispatcher struct {
	opts      Options
	log       *slog.Logger
	m         *metrics
	client    *http.Client
	receivers []*receiver
	running   atomic.Bool

	mu sync.Mutex
	// alerts by labelKey: each alert's latest change, active or resolved.
	alerts map[string]*entry
	// ring holds the last QueueSize changes: change seq lives at
	// ring[seq%len(ring)] for first <= seq < next.
	ring        []*change
	first, next uint64
	active      int
}

// change is an alert as of one Set or Resolve. It is never modified once
// made, so senders read it without the lock.
type change struct {
	seq          uint64
	labels       map[string]string
	annotations  map[string]string
	startsAt     time.Time
	endsAt       time.Time // zero while active
	generatorURL string
	fingerprint  string
	updatedAt    time.Time
}

func (c *change) active() bool { return c.endsAt.IsZero() }

type entry struct {
	cur *change
	// resolvedAt is when Resolve was called (Now), the start of
	// ResolvedFor.
	resolvedAt time.Time
}

// New checks the options and builds a Dispatcher; nothing is sent before
// Run.
func New(opts Options) (*Dispatcher, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("alert dispatcher: %w", err)
	}
	tr := opts.Transport
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	d := &Dispatcher{
		opts:   opts,
		log:    opts.Logger,
		m:      newMetrics(opts.Registerer),
		client: &http.Client{Transport: tr},
		alerts: map[string]*entry{},
		ring:   make([]*change, opts.QueueSize),
	}
	for _, rc := range opts.Receivers {
		d.receivers = append(d.receivers, newReceiver(rc, d.m))
	}
	return d, nil
}
