package config

import (
	"net/url"
	"strings"
	"time"
)

// The links block: one per endpoint (TCP, TLS, serial line, RTU over TCP).

type rawLink struct {
	ID                string         `yaml:"id"`
	URL               string         `yaml:"url"`
	Timeout           *time.Duration `yaml:"timeout"`
	PauseAfterConnect *time.Duration `yaml:"pause_after_connect"`
	BackoffInitial    *time.Duration `yaml:"backoff_initial"`
	BackoffMax        *time.Duration `yaml:"backoff_max"`
	Serial            *rawSerial     `yaml:"serial"`
	TLS               *rawTLS        `yaml:"tls"`
}

type rawSerial struct {
	Baud     *int    `yaml:"baud"`
	DataBits *int    `yaml:"data_bits"`
	Parity   *string `yaml:"parity"`
	StopBits *int    `yaml:"stop_bits"`
}

type rawTLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	CA   string `yaml:"ca"`
}

func (l *loader) links(raws []rawLink, m *Model) map[string]*Link {
	byID := map[string]*Link{}
	idLine := map[string]int{}
	urlOwner := map[string]int{}
	for i := range raws {
		r := &raws[i]
		path := indexPath("links", i)
		lk := &Link{
			ID:             r.ID,
			URL:            r.URL,
			Timeout:        m.Poll.Timeout,
			BackoffInitial: m.Poll.BackoffInitial,
			BackoffMax:     m.Poll.BackoffMax,
		}
		m.Links = append(m.Links, lk)
		switch line, dup := idLine[r.ID]; {
		case r.ID == "":
			l.s.add(path+".id", "required")
		case !validID(r.ID):
			l.s.add(path+".id", "invalid link id %q (want [A-Za-z0-9_.-]+)", r.ID)
		case dup:
			l.s.add(path+".id", "duplicate link id %q (first at line %d)", r.ID, line)
		default:
			idLine[r.ID] = l.s.line(path + ".id")
			byID[r.ID] = lk
		}

		lk.Scheme = l.linkURL(r.URL, path+".url")
		if lk.Scheme != "" {
			if first, dup := urlOwner[r.URL]; dup {
				l.s.add(path+".url", "url already used by link %q (line %d): one link per endpoint", raws[first].ID, l.s.line(indexPath("links", first)))
			} else {
				urlOwner[r.URL] = i
			}
		}

		if r.Timeout != nil {
			lk.Timeout = *r.Timeout
			l.positive(path+".timeout", lk.Timeout)
		}
		if r.PauseAfterConnect != nil {
			lk.PauseAfterConnect = *r.PauseAfterConnect
			l.nonNegative(path+".pause_after_connect", lk.PauseAfterConnect)
		}
		if r.BackoffInitial != nil {
			lk.BackoffInitial = *r.BackoffInitial
			l.atLeast(path+".backoff_initial", lk.BackoffInitial, minBackoff)
		}
		if r.BackoffMax != nil {
			lk.BackoffMax = *r.BackoffMax
		}
		if (r.BackoffInitial != nil || r.BackoffMax != nil) && lk.BackoffMax < lk.BackoffInitial {
			l.s.add(path+".backoff_max", "backoff_max %s is shorter than backoff_initial %s", lk.BackoffMax, lk.BackoffInitial)
		}

		switch lk.Scheme {
		case SchemeRTU, SchemeRTUOverTCP:
			if r.Serial == nil {
				if lk.Scheme == SchemeRTU {
					l.s.add(path+".serial", "required for rtu:// links (baud, data_bits, parity, stop_bits)")
				} else {
					l.s.add(path+".serial", "required for rtuovertcp:// links (at least baud)")
				}
			} else {
				lk.Serial = l.serial(r.Serial, path+".serial", lk.Scheme)
			}
		case SchemeTCP, SchemeTLS:
			if r.Serial != nil {
				l.s.add(path+".serial", "only for rtu:// and rtuovertcp:// links")
			}
		}
		switch {
		case lk.Scheme == SchemeTLS && r.TLS == nil:
			l.s.add(path+".tls", "required for tcp+tls:// links (cert, key, ca)")
		case lk.Scheme == SchemeTLS:
			lk.TLS = &TLS{}
			for _, f := range []struct {
				key string
				in  string
				out *string
			}{{"cert", r.TLS.Cert, &lk.TLS.CertFile}, {"key", r.TLS.Key, &lk.TLS.KeyFile}, {"ca", r.TLS.CA, &lk.TLS.CAFile}} {
				if f.in == "" {
					l.s.add(path+".tls."+f.key, "required for tcp+tls:// links")
				} else {
					*f.out = l.resolve(f.in)
				}
			}
		case r.TLS != nil && lk.Scheme != "":
			l.s.add(path+".tls", "only for tcp+tls:// links")
		}
	}
	return byID
}

// linkURL checks a link URL and returns its scheme, or "" when it is bad.
func (l *loader) linkURL(raw, path string) Scheme {
	if raw == "" {
		l.s.add(path, "required")
		return ""
	}
	if !strings.Contains(raw, "://") {
		l.s.add(path, "url %q has no scheme (want tcp://host:port, tcp+tls://host:port, rtu:///dev/ttyX or rtuovertcp://host:port)", raw)
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		l.s.add(path, "invalid url %q: %v", raw, unwrapURLError(err))
		return ""
	}
	switch s := Scheme(u.Scheme); s {
	case SchemeTCP, SchemeTLS, SchemeRTUOverTCP:
		if u.Hostname() == "" || u.Port() == "" || u.Port() == "0" {
			l.s.add(path, "url %q needs host:port", raw)
			return ""
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			l.s.add(path, "url %q: want %s://host:port and nothing else", raw, s)
			return ""
		}
		return s
	case SchemeRTU:
		if u.Host != "" || u.Path == "" || u.Path == "/" || u.RawQuery != "" {
			l.s.add(path, "url %q: want rtu:///dev/ttyX (three slashes, then the device path)", raw)
			return ""
		}
		return s
	default:
		l.s.add(path, "unsupported scheme %q (want tcp, tcp+tls, rtu or rtuovertcp)", u.Scheme)
		return ""
	}
}

// serial checks serial settings: all four are required on rtu://, only baud
// on rtuovertcp:// (where the others do not exist on the wire we speak).
func (l *loader) serial(r *rawSerial, path string, scheme Scheme) *Serial {
	full := scheme == SchemeRTU
	sr := &Serial{}
	required := func(key string) {
		l.s.add(path+"."+key, "required for %s:// links", scheme)
	}
	switch {
	case r.Baud == nil:
		required("baud")
	case *r.Baud <= 0:
		l.s.add(path+".baud", "baud %d must be > 0", *r.Baud)
	default:
		sr.Baud = *r.Baud
	}
	switch {
	case r.DataBits == nil:
		if full {
			required("data_bits")
		}
	case *r.DataBits != 7 && *r.DataBits != 8:
		l.s.add(path+".data_bits", "data_bits %d: want 7 or 8", *r.DataBits)
	default:
		sr.DataBits = *r.DataBits
	}
	switch {
	case r.Parity == nil:
		if full {
			required("parity")
		}
	case *r.Parity != "N" && *r.Parity != "E" && *r.Parity != "O":
		l.s.add(path+".parity", "parity %q: want N, E or O", *r.Parity)
	default:
		sr.Parity = *r.Parity
	}
	switch {
	case r.StopBits == nil:
		if full {
			required("stop_bits")
		}
	case *r.StopBits != 1 && *r.StopBits != 2:
		l.s.add(path+".stop_bits", "stop_bits %d: want 1 or 2", *r.StopBits)
	default:
		sr.StopBits = *r.StopBits
	}
	return sr
}
