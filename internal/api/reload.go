package api

import (
	"errors"
	"net"
	"net/http"
	"strings"
)

// reloadError is the answer of a reload that changed nothing: the whole
// message, and the lines of its cause (a configuration's errors, each
// file:line: key.path: message).
type reloadError struct {
	Error  string   `json:"error"`
	Errors []string `json:"errors"`
}

// reload serves POST /-/reload: 200 with Options.Reload's summary, or 400
// with why nothing changed. Who may call it is in security.go.
func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	by := s.authBy(r)
	if by == "" && (r.Header.Get("Authorization") != "" || !fromLoopback(r)) {
		if s.opts.Token.Reveal() == "" {
			writeError(w, http.StatusForbidden, "a reload from another host needs a token: set http.token_file or http.token_env")
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="feederd"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong token")
		return
	}
	if err := sameOrigin(r, by); err != nil {
		writeError(w, http.StatusForbidden, "%s", err.Error())
		return
	}
	sum, err := s.opts.Reload(r.Context())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, reloadError{Error: err.Error(), Errors: causeLines(err)})
		return
	}
	writeJSON(w, http.StatusOK, sum)
}

// causeLines is the message of err's innermost cause, line by line: for a
// refused file, its errors without the words the reload wrapped them in.
func causeLines(err error) []string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return strings.Split(err.Error(), "\n")
		}
		err = next
	}
}

// fromLoopback reports whether the request's peer is on this host.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
