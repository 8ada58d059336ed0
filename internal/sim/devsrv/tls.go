package devsrv

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ListenTLS serves Modbus/TCP Security on addr: MBAP over TLS 1.2 or later
// with mutual authentication, as the specification requires. cfg must carry
// the server's certificate and the CAs that sign client certificates
// (ClientCAs); ListenTLS works on a copy and forces
// tls.RequireAndVerifyClientCert, so a client without a valid certificate
// never reaches a register. Port 0 picks a free port; URL (tcp+tls://...)
// tells which. Faults behave as on ListenTCP.
func ListenTLS(addr string, u *Units, o ServerOptions, cfg *tls.Config) (*Endpoint, error) {
	if cfg == nil {
		return nil, fmt.Errorf("listen modbus tcp+tls on %s: no tls config", addr)
	}
	if len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil {
		return nil, fmt.Errorf("listen modbus tcp+tls on %s: no server certificate", addr)
	}
	if cfg.ClientCAs == nil && cfg.GetConfigForClient == nil {
		return nil, fmt.Errorf("listen modbus tcp+tls on %s: no client CAs to verify client certificates", addr)
	}
	cfg = cfg.Clone()
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	s, err := listenTCP(string(TransportTLS), addr, u, o, cfg)
	if err != nil {
		return nil, fmt.Errorf("listen modbus tcp+tls on %s: %w", addr, err)
	}
	s.proto = s.serveMBAP
	return s.endpoint(), nil
}

// LoadTLSConfig builds ListenTLS's configuration from PEM files: the
// server's certificate and key, and the CA bundle that client certificates
// must chain to.
func LoadTLSConfig(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls key pair %s, %s: %w", certFile, keyFile, err)
	}
	pem, err := os.ReadFile(clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("load client CAs: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("load client CAs %s: %w", clientCAFile, errors.New("no PEM certificate in the file"))
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
}
