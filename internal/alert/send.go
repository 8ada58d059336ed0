package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// SignatureHeader carries the HMAC-SHA256 of a signed webhook body as
// "sha256=<lower-case hex>".
const SignatureHeader = "X-Feederd-Signature"

// WebhookVersion is the version of the webhook body's schema.
const WebhookVersion = "1"

// amAlert is a postable alert of the Alertmanager API v2.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// WebhookBody is what a webhook receiver gets (README, "Alerts").
type WebhookBody struct {
	Version string         `json:"version"`
	Sender  string         `json:"sender"`
	Alerts  []WebhookAlert `json:"alerts"`
}

// WebhookAlert is one change of one alert in a WebhookBody.
type WebhookAlert struct {
	// Status is "firing" or "resolved".
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	// EndsAt is the zero time (0001-01-01T00:00:00Z) while firing.
	EndsAt       time.Time `json:"endsAt"`
	GeneratorURL string    `json:"generatorURL"`
	// Fingerprint identifies the label set; with UpdatedAt, the time of
	// the change, it identifies a change across retries and restarts.
	Fingerprint string    `json:"fingerprint"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// rejectedError is an answer that retrying will not change.
type rejectedError struct{ err error }

func (e *rejectedError) Error() string { return e.err.Error() }
func (e *rejectedError) Unwrap() error { return e.err }

const (
	resultSuccess  = "success"
	resultRetry    = "retry"
	resultRejected = "rejected"
)

// deliver sends j to r in requests of at most MaxBatch alerts, in order,
// and stops at the first failure. Bodies are encoded at each attempt, so
// an active alert's endsAt counts from the time it is really sent.
func (d *Dispatcher) deliver(ctx context.Context, r *receiver, j *job) error {
	for rest := j.changes; len(rest) > 0; {
		n := min(len(rest), d.opts.MaxBatch)
		body, err := d.encode(r, rest[:n])
		if err != nil {
			return &rejectedError{fmt.Errorf("%s: encode alerts: %w", r.Name, err)}
		}
		if err := d.post(ctx, r, body); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return nil
}

func (d *Dispatcher) encode(r *receiver, cs []*change) ([]byte, error) {
	now := d.opts.Now().UTC()
	if r.Kind == Alertmanager {
		out := make([]amAlert, len(cs))
		for i, c := range cs {
			end := c.endsAt
			if c.active() {
				end = now.Add(d.opts.ActiveFor)
			}
			out[i] = amAlert{Labels: c.labels, Annotations: c.annotations, StartsAt: c.startsAt.UTC(),
				EndsAt: end.UTC(), GeneratorURL: c.generatorURL}
		}
		return json.Marshal(out)
	}
	out := WebhookBody{Version: WebhookVersion, Sender: d.opts.Sender, Alerts: make([]WebhookAlert, len(cs))}
	for i, c := range cs {
		a := WebhookAlert{Status: "firing", Labels: c.labels, Annotations: c.annotations, StartsAt: c.startsAt.UTC(),
			GeneratorURL: c.generatorURL, Fingerprint: c.fingerprint, UpdatedAt: c.updatedAt.UTC()}
		if a.Annotations == nil {
			a.Annotations = map[string]string{}
		}
		if !c.active() {
			a.Status, a.EndsAt = "resolved", c.endsAt.UTC()
		}
		out.Alerts[i] = a
	}
	return json.Marshal(out)
}

// post sends one body and classifies the outcome: nil, a *rejectedError
// (do not retry) or another error (retry). Errors name the receiver, never
// its URL, which may hold a token.
func (d *Dispatcher) post(ctx context.Context, r *receiver, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint, bytes.NewReader(body))
	if err != nil {
		r.sends.WithLabelValues(resultRejected).Inc()
		return &rejectedError{fmt.Errorf("%s: build request: %w", r.Name, stripURL(err))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.opts.Sender)
	if r.Kind == Webhook && len(r.Secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(r.Secret, body))
	}
	start := time.Now()
	resp, err := d.client.Do(req)
	r.requestSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		r.sends.WithLabelValues(resultRetry).Inc()
		return fmt.Errorf("%s: post %d bytes: %w", r.Name, len(body), stripURL(err))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		r.sends.WithLabelValues(resultSuccess).Inc()
		return nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		r.sends.WithLabelValues(resultRetry).Inc()
		return fmt.Errorf("%s: %s: %s", r.Name, resp.Status, oneLine(msg))
	default:
		r.sends.WithLabelValues(resultRejected).Inc()
		return &rejectedError{fmt.Errorf("%s: %s: %s", r.Name, resp.Status, oneLine(msg))}
	}
}

// stripURL drops the URL that net/http puts into its errors.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func oneLine(b []byte) string {
	return strings.Join(strings.Fields(string(b)), " ")
}
