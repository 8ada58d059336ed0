package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

// TestTestPKI: the server certificate verifies for 127.0.0.1 and the client
// certificate for client auth, both against the CA, and not against another
// call's CA.
func TestTestPKI(t *testing.T) {
	ca, sc, sk, cc, ck := TestPKI(t)
	otherCA, _, _, _, _ := TestPKI(t)
	pool := func(path string) *x509.CertPool {
		pem, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(pem) {
			t.Fatalf("%s holds no certificate", path)
		}
		return p
	}
	leaf := func(certFile, keyFile string) *x509.Certificate {
		kp, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return kp.Leaf
	}
	server, client := leaf(sc, sk), leaf(cc, ck)
	tests := []struct {
		name  string
		cert  *x509.Certificate
		roots *x509.CertPool
		opts  x509.VerifyOptions
		ok    bool
	}{
		{"server for 127.0.0.1", server, pool(ca), x509.VerifyOptions{DNSName: "127.0.0.1"}, true},
		{"server for localhost", server, pool(ca), x509.VerifyOptions{DNSName: "localhost"}, true},
		{"server for another name", server, pool(ca), x509.VerifyOptions{DNSName: "example.com"}, false},
		{"client", client, pool(ca), x509.VerifyOptions{KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, true},
		{"client as a server", client, pool(ca), x509.VerifyOptions{}, false},
		{"server against another CA", server, pool(otherCA), x509.VerifyOptions{DNSName: "127.0.0.1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Roots = tt.roots
			_, err := tt.cert.Verify(tt.opts)
			if (err == nil) != tt.ok {
				t.Fatalf("verify: %v, want ok %v", err, tt.ok)
			}
		})
	}
}
