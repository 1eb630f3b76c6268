package testpeers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Listen starts `node script args...` (see Start), waits for its first line, `listening PORT`,
// and returns the program and its address on 127.0.0.1.
func Listen(t testing.TB, script string, args ...string) (*Proc, string) {
	t.Helper()
	p := Start(t, script, args...)
	line := p.Line(t, 20*time.Second)
	port, ok := strings.CutPrefix(line, "listening ")
	if !ok {
		t.Fatalf("%s printed %q, want `listening PORT`", script, line)
	}
	return p, "127.0.0.1:" + port
}

// JSONLine reads the program's next line as JSON into v, failing the test after timeout.
func (p *Proc) JSONLine(t testing.TB, timeout time.Duration, v any) {
	t.Helper()
	line := p.Line(t, timeout)
	if err := json.Unmarshal([]byte(line), v); err != nil {
		t.Fatalf("peer printed %q: %v", line, err)
	}
}

// Cert is a test certificate authority and a certificate it signed for 127.0.0.1, ::1,
// localhost and the names given to NewCert.
type Cert struct {
	Pool     *x509.CertPool  // holds the authority: the RootCAs of clients
	TLS      tls.Certificate // the certificate and key, for Go servers (or client certificates)
	CertFile string          // the certificate in PEM, for Node servers
	KeyFile  string          // the key in PEM
}

// NewCert makes a fresh authority and a certificate signed by it, valid for an hour, and
// writes both PEM files to a temporary directory of the test.
func NewCert(t testing.TB, names ...string) *Cert {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "herald test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "herald test"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     append([]string{"localhost"}, names...),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := &Cert{Pool: x509.NewCertPool(), TLS: pair,
		CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	c.Pool.AddCert(caCert)
	if err := os.WriteFile(c.CertFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}
