package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/samrack/samrack/api/credentials"
)

// handshake runs a TLS handshake over loopback between a server with cfg
// and a client with ccfg; it returns the server's view and both errors.
func handshake(t *testing.T, cfg, ccfg *tls.Config) (tls.ConnectionState, error, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		cs  tls.ConnectionState
		err error
	}
	done := make(chan result, 1)
	go func() { // owned by this function: it waits on done
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		sc := tls.Server(c, cfg)
		err = sc.Handshake()
		if err == nil {
			// TLS 1.3 client certs are checked after the client's Finished;
			// read the client's byte to be sure the exchange completed.
			_, err = io.ReadFull(sc, make([]byte, 1))
			if err == nil {
				_, err = sc.Write([]byte{1})
			}
		}
		done <- result{sc.ConnectionState(), err}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), ccfg)
	var cerr error
	if err != nil {
		cerr = err
	} else {
		if _, err := c.Write([]byte{1}); err != nil {
			cerr = err
		} else if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			cerr = err
		}
		c.Close()
	}
	r := <-done
	return r.cs, r.err, cerr
}

func readerBundle(t *testing.T, p *PKI, serial string) *credentials.Bundle {
	t.Helper()
	cert, key, err := p.IssueReader(serial)
	if err != nil {
		t.Fatal(err)
	}
	return &credentials.Bundle{
		Server: "127.0.0.1:1", ReaderSerial: serial, Cipher: credentials.CipherSM4,
		KeyHex: hex.EncodeToString(make([]byte, 16)), CertPEM: string(cert), KeyPEM: string(key), CAPEM: string(p.CAPEM()),
	}
}

func TestReaderHandshake(t *testing.T) {
	p, err := LoadOrCreate(t.TempDir(), []string{"rack1.example", "10.0.0.5"})
	if err != nil {
		t.Fatal(err)
	}
	b := readerBundle(t, p, "RDR-0001")
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	ccfg, err := b.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	cs, serr, cerr := handshake(t, p.ServerTLS(), ccfg)
	if serr != nil || cerr != nil {
		t.Fatalf("server %v, client %v", serr, cerr)
	}
	if cs.Version != tls.VersionTLS13 {
		t.Fatalf("version %x", cs.Version)
	}
	serial, err := ReaderSerialFromConn(cs)
	if err != nil || serial != "RDR-0001" {
		t.Fatalf("serial %q, %v", serial, err)
	}

	// The admin certificate is verified but is not a reader.
	cs, serr, cerr = handshake(t, p.ServerTLS(), p.AdminTLS())
	if serr != nil || cerr != nil {
		t.Fatalf("admin: server %v, client %v", serr, cerr)
	}
	if _, err := ReaderSerialFromConn(cs); !errors.Is(err, ErrNotReader) {
		t.Fatalf("admin as reader: %v", err)
	}
	if _, err := ReaderSerialFromConn(tls.ConnectionState{}); !errors.Is(err, ErrNoClientCert) {
		t.Fatal(err)
	}
}

func TestOtherCARefused(t *testing.T) {
	p, err := LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// A reader of the other CA that trusts our server: the server refuses it.
	b := readerBundle(t, other, "RDR-EVIL")
	b.CAPEM = string(p.CAPEM())
	ccfg, err := b.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	_, serr, cerr := handshake(t, p.ServerTLS(), ccfg)
	if serr == nil || cerr == nil {
		t.Fatalf("foreign client accepted: server %v, client %v", serr, cerr)
	}
	// No client certificate at all.
	ccfg.Certificates = nil
	if _, serr, _ := handshake(t, p.ServerTLS(), ccfg); serr == nil {
		t.Fatal("client without certificate accepted")
	}
	// TLS 1.2 is refused.
	ccfg, _ = readerBundle(t, p, "R12").TLSConfig()
	ccfg.MinVersion, ccfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if _, serr, _ := handshake(t, p.ServerTLS(), ccfg); serr == nil {
		t.Fatal("TLS 1.2 accepted")
	}
}

func TestLoadOrCreateReloads(t *testing.T) {
	dir := t.TempDir()
	p1, err := LoadOrCreate(dir, []string{"a.example"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{caFile, caKeyFile, serverFile, serverKeyFile, adminFile, adminKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v", name, fi.Mode().Perm())
		}
	}
	p2, err := LoadOrCreate(dir, []string{"a.example"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p1.CAPEM(), p2.CAPEM()) || !bytes.Equal(p1.server.Leaf.Raw, p2.server.Leaf.Raw) {
		t.Fatal("reload created new certificates")
	}
	// A new host reissues the server certificate under the same CA.
	p3, err := LoadOrCreate(dir, []string{"a.example", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p1.CAPEM(), p3.CAPEM()) || bytes.Equal(p1.server.Leaf.Raw, p3.server.Leaf.Raw) {
		t.Fatal("want same CA, new server certificate")
	}
	leaf := p3.server.Leaf
	for _, name := range []string{"localhost", "samrack", "a.example"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Error(err)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1", "192.0.2.7"} {
		if err := leaf.VerifyHostname(ip); err != nil {
			t.Error(err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: p3.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatal(err)
	}

	// A world-readable key is refused; a half CA directory too.
	os.Chmod(filepath.Join(dir, caKeyFile), 0o644)
	if _, err := LoadOrCreate(dir, nil); !errors.Is(err, ErrInsecureFile) {
		t.Fatalf("0644 key: %v", err)
	}
	os.Remove(filepath.Join(dir, caKeyFile))
	if _, err := LoadOrCreate(dir, nil); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("no CA key: %v", err)
	}
}

func TestIssueReaderSerial(t *testing.T) {
	p, err := LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "a b", "x\n", "123456789012345678901234567890123"} {
		if _, _, err := p.IssueReader(bad); !errors.Is(err, ErrBadSerial) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
