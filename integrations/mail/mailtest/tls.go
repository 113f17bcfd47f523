package mailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

var selfSigned struct {
	once sync.Once
	cert tls.Certificate
	pool *x509.CertPool
	err  error
}

// SelfSignedTLS returns a server configuration with a self-signed
// certificate for 127.0.0.1, ::1 and localhost, and a client configuration
// that trusts it (and nothing else). The certificate is made once per test
// binary; each call returns new configurations. WithTLS(nil) and
// WithImplicitTLS(nil) use it.
func SelfSignedTLS(tb testing.TB) (server, client *tls.Config) {
	tb.Helper()
	ss := &selfSigned
	ss.once.Do(func() { ss.cert, ss.pool, ss.err = makeCert() })
	if ss.err != nil {
		tb.Fatalf("mailtest: making a certificate: %v", ss.err)
	}
	return &tls.Config{Certificates: []tls.Certificate{ss.cert}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: ss.pool, MinVersion: tls.VersionTLS12}
}

func makeCert() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: Domain},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
