package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"time"
)

// maxAlertQueue bounds alerting.queue_size: about a kilobyte a change.
const maxAlertQueue = 1_000_000

type rawAlerts struct {
	Alertmanagers  []rawAlertmanager `yaml:"alertmanagers"`
	Webhooks       []rawWebhook      `yaml:"webhooks"`
	ResendInterval *time.Duration    `yaml:"resend_interval"`
	ActiveFor      *time.Duration    `yaml:"active_for"`
	ResolvedFor    *time.Duration    `yaml:"resolved_for"`
	Timeout        *time.Duration    `yaml:"timeout"`
	QueueSize      *int              `yaml:"queue_size"`
}

type rawAlertmanager struct {
	URL  string `yaml:"url"`
	Name string `yaml:"name"`
}

type rawWebhook struct {
	URL        string `yaml:"url"`
	Name       string `yaml:"name"`
	SecretEnv  string `yaml:"secret_env"`
	SecretFile string `yaml:"secret_file"`
	// Secret is only here to give a better error than "unknown key".
	Secret *string `yaml:"secret"`
}

func (l *loader) alerting(r *rawAlerts) Alerting {
	a := l.d.Alerting
	if r == nil {
		return a
	}
	if len(r.Alertmanagers)+len(r.Webhooks) == 0 {
		l.s.add("alerting", "no receivers: list alertmanagers or webhooks, or omit the block")
	}
	names := map[string]string{} // receiver name -> key path of the first
	name := func(path, given, def string) string {
		n := given
		if n == "" {
			n = def
		} else if !validID(n) {
			l.s.add(path+".name", "invalid receiver name %q (want [A-Za-z0-9_.-]+)", n)
			return n
		}
		if first, dup := names[n]; dup {
			l.s.add(path+".name", "duplicate receiver name %q (%s, line %d)", n, first, l.s.line(first))
		} else {
			names[n] = path
		}
		return n
	}
	urls := map[string]int{}
	for i, ra := range r.Alertmanagers {
		path := indexPath("alerting.alertmanagers", i)
		l.receiverURL(path+".url", ra.URL, urls)
		a.Alertmanagers = append(a.Alertmanagers, AlertReceiver{
			Name: name(path, ra.Name, fmt.Sprintf("alertmanager-%d", i)),
			URL:  ra.URL,
		})
	}
	urls = map[string]int{}
	for i, rw := range r.Webhooks {
		path := indexPath("alerting.webhooks", i)
		l.receiverURL(path+".url", rw.URL, urls)
		a.Webhooks = append(a.Webhooks, AlertReceiver{
			Name:   name(path, rw.Name, fmt.Sprintf("webhook-%d", i)),
			URL:    rw.URL,
			Secret: l.webhookSecret(path, &rw),
		})
	}
	if r.ResendInterval != nil {
		a.ResendInterval = *r.ResendInterval
		l.positive("alerting.resend_interval", a.ResendInterval)
	}
	if r.ActiveFor != nil {
		a.ActiveFor = *r.ActiveFor
	}
	if a.ResendInterval > 0 && a.ActiveFor < 2*a.ResendInterval {
		l.s.add("alerting.active_for", "active_for %s must be at least 2 x resend_interval %s, or alerts expire between re-sends", a.ActiveFor, a.ResendInterval)
	}
	if r.ResolvedFor != nil {
		a.ResolvedFor = *r.ResolvedFor
		l.nonNegative("alerting.resolved_for", a.ResolvedFor)
	}
	if r.Timeout != nil {
		a.Timeout = *r.Timeout
		l.positive("alerting.timeout", a.Timeout)
	}
	if r.QueueSize != nil {
		a.QueueSize = *r.QueueSize
		if a.QueueSize < 1 || a.QueueSize > maxAlertQueue {
			l.s.add("alerting.queue_size", "queue_size %d out of range 1..%d", a.QueueSize, maxAlertQueue)
		}
	}
	return a
}

// receiverURL checks a receiver's URL and that its list has it once.
func (l *loader) receiverURL(path, raw string, seen map[string]int) {
	if raw == "" {
		l.s.add(path, "required")
		return
	}
	if !l.httpURL(path, raw, "credentials in the url: secrets never live in this file") {
		return
	}
	if line, dup := seen[raw]; dup {
		l.s.add(path, "url already listed (line %d)", line)
		return
	}
	seen[raw] = l.s.line(path)
}

// httpURL checks an http(s) URL with a host and no user:password@, and
// reports whether it is good; credMsg is the message for credentials.
func (l *loader) httpURL(path, raw, credMsg string) bool {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		l.s.add(path, "invalid url %q: %v", raw, unwrapURLError(err))
	case u.Scheme != "http" && u.Scheme != "https":
		l.s.add(path, "unsupported scheme %q (want http or https)", u.Scheme)
	case u.User != nil:
		l.s.add(path, "%s", credMsg)
	case u.Host == "":
		l.s.add(path, "url %q has no host", raw)
	default:
		return true
	}
	return false
}

// webhookSecret reads a webhook's HMAC key from secret_env or secret_file.
func (l *loader) webhookSecret(path string, r *rawWebhook) Secret {
	if r.Secret != nil {
		l.s.add(path+".secret", "secrets must come from secret_env or secret_file")
		return Secret{}
	}
	return l.readSecret(path, "secret", r.SecretEnv, r.SecretFile)
}

// readSecret reads a credential from the environment variable named by
// <noun>_env or the file named by <noun>_file under path: one of them, or
// neither (an empty Secret).
func (l *loader) readSecret(path, noun, env, file string) Secret {
	switch {
	case env != "" && file != "":
		l.s.add(path+"."+noun+"_file", "set %[1]s_env or %[1]s_file, not both", noun)
	case env != "":
		if v := l.getenv(env); v != "" {
			return NewSecret(v)
		}
		l.s.add(path+"."+noun+"_env", "environment variable %s is not set or empty", env)
	case file != "":
		key := path + "." + noun + "_file"
		data, err := l.readFile(l.resolve(file))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			l.s.addErr(key, err, "%s file %q not found", noun, file)
		case err != nil:
			l.s.addErr(key, err, "read %s file %q: %v", noun, file, err)
		case strings.TrimSpace(string(data)) == "":
			l.s.add(key, "%s file %q is empty", noun, file)
		default:
			return NewSecret(strings.TrimSpace(string(data)))
		}
	}
	return Secret{}
}
