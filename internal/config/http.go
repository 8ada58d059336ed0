package config

import (
	"errors"
	"io/fs"
	"net"
	"strconv"
)

// The http block: the listener of /metrics, the probes and the service desk.

type rawHTTP struct {
	Listen *string `yaml:"listen"`
	// The desk's security (httpSecurity).
	TokenEnv  string  `yaml:"token_env"`
	TokenFile string  `yaml:"token_file"`
	Token     *string `yaml:"token"`
	TLSCert   string  `yaml:"tls_cert_file"`
	TLSKey    string  `yaml:"tls_key_file"`
}

func (l *loader) http(r *rawHTTP) HTTP {
	h := l.d.HTTP
	if r.Listen != nil {
		h.Listen = *r.Listen
		_, port, err := net.SplitHostPort(h.Listen)
		if err == nil {
			_, err = strconv.ParseUint(port, 10, 16)
		}
		if err != nil {
			l.s.add("http.listen", "invalid listen address %q (want host:port)", h.Listen)
		}
	}
	l.httpSecurity(r, &h)
	return h
}

// httpSecurity reads the service desk's token and TLS files of the http
// block; the rules themselves are the api package's (api/security.go).
func (l *loader) httpSecurity(r *rawHTTP, h *HTTP) {
	if r.Token != nil {
		l.s.add("http.token", "secrets must come from token_env or token_file")
	} else {
		h.Token = l.readSecret("http", "token", r.TokenEnv, r.TokenFile)
	}
	if (r.TLSCert == "") != (r.TLSKey == "") {
		l.s.add("http.tls_key_file", "set both tls_cert_file and tls_key_file, or neither")
	} else if r.TLSCert != "" {
		for _, f := range []struct{ key, file string }{{"http.tls_cert_file", r.TLSCert}, {"http.tls_key_file", r.TLSKey}} {
			_, err := l.readFile(l.resolve(f.file))
			switch {
			case errors.Is(err, fs.ErrNotExist):
				l.s.addErr(f.key, err, "file %q not found", f.file)
			case err != nil:
				l.s.addErr(f.key, err, "read %q: %v", f.file, err)
			}
		}
		h.TLSCert, h.TLSKey = l.resolve(r.TLSCert), l.resolve(r.TLSKey)
	}
	_, _, err := net.SplitHostPort(h.Listen)
	if err == nil && r.TokenEnv == "" && r.TokenFile == "" && r.Token == nil && !LoopbackListen(h.Listen) {
		l.s.add("http.listen", "%s is not a loopback address: the service desk there needs a token (token_env or token_file)", h.Listen)
	}
}

// LoopbackListen reports whether host:port listens on a loopback address
// only (an empty host listens on every address); the api package applies
// the same rule to -listen.
func LoopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
