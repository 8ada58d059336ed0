package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/feederd/feederd/internal/config"
)

// The desk's security rules, enforced here and nowhere else:
//
//   - On a loopback address (127.0.0.1, ::1, localhost) the page and the
//     read-only API are open. On any other address they need the token,
//     and New refuses to start without one.
//   - Changes (every POST) always need the token; with none configured
//     they are refused.
//   - The token comes as "Authorization: Bearer <token>" or as the
//     HttpOnly, SameSite=Strict cookie that POST /login sets from a form.
//     It is compared in constant time and never logged.
//   - CSRF: nothing changes on GET; a POST whose Origin is not this
//     server's is refused, and so is a POST authenticated by the cookie
//     without an Origin.
//   - /metrics, /healthz and /readyz stay open (scrapers and probes).
//   - POST /-/reload (reload.go) is open to requests from a loopback
//     address (127.0.0.1, ::1), as Prometheus's is to its host; from
//     elsewhere it needs the token, and a wrong token is refused from
//     anywhere. The Origin rule above applies, so a web page cannot make a
//     browser on the host reload.

const tokenCookie = "feederd_token"

func checkSecurity(o *Options) error {
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errors.New("http server: TLS needs both a certificate and a key file")
	}
	if !config.LoopbackListen(o.Listen) && o.Token.Reveal() == "" {
		return fmt.Errorf("http server: listen address %s is not loopback: set a token (http.token_file or http.token_env) to serve the desk there", o.Listen)
	}
	return nil
}

// authBy says how a request proved it holds the token: "" (it did not),
// "bearer" or "cookie".
func (s *Server) authBy(r *http.Request) string {
	want := s.opts.Token.Reveal()
	if want == "" {
		return ""
	}
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok && sameToken(t, want) {
			return "bearer"
		}
		return ""
	}
	if c, err := r.Cookie(tokenCookie); err == nil && sameToken(c.Value, want) {
		return "cookie"
	}
	return ""
}

// sameToken compares in constant time; hashing first hides the length.
func sameToken(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// sameOrigin checks the Origin of a state-changing request against the
// server's own scheme and host.
func sameOrigin(r *http.Request, by string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		if by == "cookie" {
			return errors.New("a change authenticated by cookie needs an Origin header")
		}
		return nil
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if origin != scheme+"://"+r.Host {
		return fmt.Errorf("origin %s is not this server", origin)
	}
	return nil
}

// guard applies the rules to one route; page routes answer a login form
// instead of JSON.
func (s *Server) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deny := func(code int, msg string) {
			if rt.page {
				s.page.login(w, code, msg)
				return
			}
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="feederd"`)
			}
			writeError(w, code, "%s", msg)
		}
		by := s.authBy(r)
		if rt.mutating {
			switch {
			case s.opts.Token.Reveal() == "":
				deny(http.StatusForbidden, "changes need a token: set http.token_file or http.token_env")
				return
			case by == "":
				deny(http.StatusUnauthorized, "missing or wrong token")
				return
			}
			if err := sameOrigin(r, by); err != nil {
				deny(http.StatusForbidden, err.Error())
				return
			}
		} else if s.readsNeedToken && by == "" && !rt.open {
			deny(http.StatusUnauthorized, "missing or wrong token")
			return
		}
		rt.h(w, r)
	})
}
