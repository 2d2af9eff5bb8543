package raftstore

// procCluster runs raft nodes as processes of their own (faultnode_test.go)
// so that the fault tests can SIGKILL them, and talks to them through their
// control API.

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/samrack/samrack/cluster/testca"
)

type proc struct {
	id, dir          string
	certFile, keyFle string
	raftAddr         string

	mu      sync.Mutex
	ctlAddr string // empty while down
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	log     *os.File
}

func (p *proc) ctl() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ctlAddr
}

type procCluster struct {
	t      testing.TB
	dir    string
	caFile string
	ca     *testca.CA
	procs  []*proc
	snap   [2]uint64 // snapshot threshold and trailing logs of the nodes
	client *http.Client
}

// newProcCluster starts n node processes over TCP+mTLS on loopback; the
// first bootstraps and adds the others.
func newProcCluster(t testing.TB, n int, snapThreshold, trailing uint64) *procCluster {
	t.Helper()
	pc := &procCluster{t: t, dir: t.TempDir(), ca: testca.New(t, "samrack fault-test CA"), snap: [2]uint64{snapThreshold, trailing},
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	pc.caFile = filepath.Join(pc.dir, "ca.pem")
	writePEM(t, pc.caFile, "CERTIFICATE", pc.ca.Cert.Raw)
	t.Cleanup(func() {
		for _, p := range pc.procs {
			pc.kill(p)
		}
		pc.client.CloseIdleConnections()
	})
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		p := &proc{id: id, dir: filepath.Join(pc.dir, id), raftAddr: "127.0.0.1:0"}
		p.certFile, p.keyFle = pc.issueFiles(id)
		pc.procs = append(pc.procs, p)
		if err := pc.start(p, i == 0); err != nil {
			t.Fatal(err)
		}
	}
	first := pc.procs[0]
	pc.eventually(20*time.Second, "the first node to lead", func() bool {
		var st statusReply
		return pc.call(first, "GET", "/status", nil, &st) == nil && st.IsLeader
	})
	for _, p := range pc.procs[1:] {
		if err := pc.call(first, "POST", "/addvoter", url.Values{"id": {p.id}, "addr": {p.raftAddr}}, nil); err != nil {
			t.Fatalf("add %s: %v", p.id, err)
		}
	}
	return pc
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issueFiles writes node id's certificate and key.
func (pc *procCluster) issueFiles(id string) (certFile, keyFile string) {
	t := pc.t
	cert := pc.ca.Issue(t, id, NodeURI(id))
	der, key := cert.Certificate[0], cert.PrivateKey.(*ecdsa.PrivateKey)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(pc.dir, id+".pem"), filepath.Join(pc.dir, id+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

// start runs p's process and waits for its READY line; its stderr goes to
// <id>.log in the cluster directory. It returns the process's error when it
// exits before being ready (a refused data directory).
func (pc *procCluster) start(p *proc, bootstrap bool) error {
	cfg, _ := json.Marshal(nodeConfig{ID: p.id, Dir: p.dir, RaftAddr: p.raftAddr, CertFile: p.certFile, KeyFile: p.keyFle,
		CAFile: pc.caFile, Bootstrap: bootstrap, SnapshotThreshold: pc.snap[0], Trailing: pc.snap[1]})
	logf, err := os.OpenFile(filepath.Join(pc.dir, p.id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), faultNodeEnv+"="+string(cfg))
	cmd.Stderr = logf
	stdout, _ := cmd.StdoutPipe()
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "READY ") {
				ready <- l
				break
			}
		}
		close(ready)
		io.Copy(io.Discard, stdout)
	}()
	fail := func(err error) error {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		return err
	}
	select {
	case l, ok := <-ready:
		if !ok {
			err := cmd.Wait()
			logf.Close()
			b, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("%s exited before it was ready (%v): %s", p.id, err, lastLines(b, 5))
		}
		f := strings.Fields(l)
		p.mu.Lock()
		p.raftAddr, p.ctlAddr, p.cmd, p.stdin, p.log = f[1], f[2], cmd, stdin, logf
		p.mu.Unlock()
		return nil
	case <-time.After(60 * time.Second):
		return fail(fmt.Errorf("%s: not ready within 60 s", p.id))
	}
}

func lastLines(b []byte, n int) string {
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// kill SIGKILLs p (no shutdown of any kind) and reaps it.
func (pc *procCluster) kill(p *proc) {
	p.mu.Lock()
	cmd, stdin, logf := p.cmd, p.stdin, p.log
	p.cmd, p.ctlAddr = nil, ""
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	stdin.Close()
	logf.Close()
}

// restart starts a killed node again on its data directory and address.
func (pc *procCluster) restart(p *proc) {
	pc.t.Helper()
	if err := pc.start(p, false); err != nil {
		pc.t.Fatal(err)
	}
}

// errRefused: the request never reached the node (it is down), so it did
// nothing.
var errRefused = errors.New("node down")

// httpStatusError is a reply other than 200.
type httpStatusError struct {
	code int
	r    opReply
}

func (e *httpStatusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.r.Error) }

// call sends a control request to p and decodes the reply into out.
// Errors: errRefused (p is down), *httpStatusError, or another error
// (timeout, connection lost: outcome unknown).
func (pc *procCluster) call(p *proc, method, path string, q url.Values, out any) error {
	addr := p.ctl()
	if addr == "" {
		return errRefused
	}
	u := "http://" + addr + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, _ := http.NewRequest(method, u, nil)
	resp, err := pc.client.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return errRefused
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := &httpStatusError{code: resp.StatusCode}
		json.NewDecoder(resp.Body).Decode(&e.r)
		return e
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (pc *procCluster) byID(id string) *proc {
	for _, p := range pc.procs {
		if p.id == id {
			return p
		}
	}
	return nil
}

func (pc *procCluster) status(p *proc) (statusReply, error) {
	var st statusReply
	err := pc.call(p, "GET", "/status", nil, &st)
	return st, err
}

// leader waits for a running node that is leader and can commit (a
// barrier passes).
func (pc *procCluster) leader() *proc {
	pc.t.Helper()
	var l *proc
	pc.eventually(30*time.Second, "a leader that commits", func() bool {
		for _, p := range pc.procs {
			if st, err := pc.status(p); err == nil && st.IsLeader && pc.call(p, "POST", "/barrier", nil, nil) == nil {
				l = p
				return true
			}
		}
		return false
	})
	return l
}

func (pc *procCluster) healAll() {
	for _, p := range pc.procs {
		pc.call(p, "POST", "/heal", nil, nil)
	}
}

// converged heals every link, waits until every running node has applied
// what the leader has, and compares their FSM digests. It returns the
// digest.
func (pc *procCluster) converged() string {
	pc.t.Helper()
	pc.healAll()
	l := pc.leader()
	var b statusReply
	if err := pc.call(l, "POST", "/barrier", nil, &b); err != nil {
		pc.t.Fatalf("barrier on %s: %v", l.id, err)
	}
	var digest string
	for _, p := range pc.procs {
		if p.ctl() == "" {
			continue
		}
		var st statusReply
		pc.eventually(30*time.Second, p.id+" catching up", func() bool {
			var err error
			st, err = pc.status(p)
			return err == nil && st.Applied >= b.Applied
		})
		if digest == "" {
			digest = st.Digest
		}
		if st.Digest != digest || st.Digest == "" {
			pc.t.Fatalf("%s: digest %.12s (halted %q), others %.12s", p.id, st.Digest, st.Halted, digest)
		}
	}
	return digest
}

// eventually polls cond every 20 ms until it holds or d passes.
func (pc *procCluster) eventually(d time.Duration, what string, cond func() bool) {
	pc.t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			pc.dumpLogs()
			pc.t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// dumpLogs prints the tail of every node's log.
func (pc *procCluster) dumpLogs() {
	for _, p := range pc.procs {
		b, _ := os.ReadFile(filepath.Join(pc.dir, p.id+".log"))
		pc.t.Logf("--- %s log tail:\n%s", p.id, lastLines(b, 15))
	}
}
