package sim

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// ControlOptions guard rtusim's HTTP API against the requests a web page in
// a browser on the same machine could send it: a page can POST to
// 127.0.0.1 without asking (a "simple" cross-origin request, text/plain or
// a form), and a DNS name rebound to 127.0.0.1 can make such a page the
// API's own origin.
type ControlOptions struct {
	// Token, when set, must come with every request but GET /healthz as
	// "Authorization: Bearer <token>".
	Token string
	// Hosts are names, besides IP addresses and localhost, that the Host
	// header may carry (a container's service name, say).
	Hosts []string
}

// Protect wraps the API handler h with the checks of o, each answered with
// {"error": "..."}:
//   - 421 when the Host header is neither an IP address, localhost nor one
//     of o.Hosts (a rebound DNS name);
//   - 403 when the request comes from another origin (an Origin header
//     other than the API's own, or Sec-Fetch-Site cross-site or same-site);
//   - 401 without the bearer token, when o.Token is set;
//   - 415 when a POST or PUT is not application/json (POST /api/scenario
//     also takes application/yaml, application/x-yaml or text/yaml): the
//     content types a page may send without a CORS preflight are refused.
//
// OPTIONS preflights get no CORS headers, so a browser never sends the
// non-simple requests that would follow.
func Protect(h http.Handler, o ControlOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := allowedHost(r.Host, o.Hosts); err != nil {
			writeError(w, http.StatusMisdirectedRequest, err)
			return
		}
		if err := sameOrigin(r); err != nil {
			writeError(w, http.StatusForbidden, err)
			return
		}
		if o.Token != "" && !(r.Method == http.MethodGet && r.URL.Path == "/healthz") {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(o.Token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="rtusim"`)
				writeError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
				return
			}
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			if err := contentType(r); err != nil {
				writeError(w, http.StatusUnsupportedMediaType, err)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func allowedHost(hostport string, extra []string) error {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if net.ParseIP(host) != nil || strings.EqualFold(host, "localhost") || slices.Contains(extra, host) {
		return nil
	}
	return fmt.Errorf("host %q is not an IP address, localhost or an allowed host name (-allow-host)", hostport)
}

func sameOrigin(r *http.Request) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return fmt.Errorf("cross-origin request (Sec-Fetch-Site: %s) refused", site)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host != r.Host {
		return fmt.Errorf("cross-origin request from %q refused", origin)
	}
	return nil
}

func contentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		switch {
		case mt == "application/json":
			return nil
		case r.URL.Path == "/api/scenario" && (mt == "application/yaml" || mt == "application/x-yaml" || mt == "text/yaml"):
			return nil
		}
	}
	if r.URL.Path == "/api/scenario" {
		return fmt.Errorf("content type %q: want application/yaml or application/json", ct)
	}
	return fmt.Errorf("content type %q: want application/json", ct)
}
