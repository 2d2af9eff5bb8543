// Package pcsctest runs a real pcsc-lite daemon (pcscd) with vsmartcard vpcd
// readers for tests of the PC/SC driver: the virtual SAMs of package sim
// plug into the readers as cards (sim.SAM.ServeVPCD), and the driver talks to
// them through the real PC/SC stack. It follows shared/hil.md; it is test
// infrastructure, not for production.
//
// Each Server runs its own pcscd in a private mount namespace (unshare) whose
// /run/pcscd is a bind mount of a directory of this process, so test binaries
// of several packages can run pcscd side by side; the client library is
// pointed at that socket through PCSCLITE_CSOCK_NAME. pcsc-lite reads that
// variable once per process, so one process runs at most one Server at a
// time (Start waits for the previous one to stop) and must not use PC/SC
// before its first Start. Where unshare is not permitted, pcscd runs in the
// host's /run/pcscd under a lock file, one test binary at a time.
//
// Every entry of its reader.conf gives two readers ("NAME 00 00" on port P,
// "NAME 00 01" on P+1) and loads its own copy of libifdvpcd.so, as vpcd
// needs. pcscd 1.9 serves at most 16 readers.
//
// Needs the Debian packages pcscd, libpcsclite-dev and vsmartcard-vpcd, and
// root (or CAP_SYS_ADMIN) for the namespace. Outside CI a missing pcscd
// skips the test; with CI=true it fails it.
package pcsctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ebfe/scard"
)

// Where the Debian packages put things.
const (
	PCSCD     = "/usr/sbin/pcscd"
	VPCDLib   = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
	Packages  = "pcscd libpcsclite-dev vsmartcard-vpcd"
	MaxReader = 16 // pcscd 1.9.9 allows at most 16 readers
)

// Reader is one vpcd reader of a Server.
type Reader struct {
	Name string // the PC/SC reader name, "SAMRACK03 00 01"
	Port int    // the vpcd port its card connects to
	Addr string // "127.0.0.1:Port", for sim.SAM.ServeVPCD
}

// Config says what Start runs.
type Config struct {
	// Readers is the number of vpcd readers, 1..16. Entries come in pairs,
	// so an odd number gets one more reader than asked; Server.Readers
	// lists exactly Readers of them.
	Readers int
	// Debug runs pcscd with -d -a (debug, APDU log) into Server.LogFile.
	Debug bool
	// StartTimeout bounds the wait for pcscd to list every reader;
	// default 15 s.
	StartTimeout time.Duration
}

// Server is a running pcscd with vpcd readers.
type Server struct {
	// Readers are the readers asked for, sorted by name.
	Readers []Reader
	// Dir holds reader.conf.d, the driver copies and the log.
	Dir string
	// LogFile is pcscd's output.
	LogFile string

	cfg     Config
	entries []entry
	unlock  func() // releases the one-server-per-process slot

	mu   sync.Mutex // mu guards proc and the fields of a running pcscd
	proc *process
}

type entry struct {
	name string // FRIENDLYNAME
	port int    // port of slot 00; slot 01 is port+1
}

// process is one pcscd run; its waiter goroutine is owned by Server.stop.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd.Wait returned
	err    error         // cmd.Wait's result, valid after exited
	log    *os.File
}

// serverSlot enforces one Server per process (see the package doc).
var serverSlot = make(chan struct{}, 1)

var (
	sockOnce sync.Once
	sockDir  string // directory bind-mounted on /run/pcscd, "" in host mode
	sockErr  error
	//lint:ignore U1000 only stored: the reference keeps the lock file (and its lock) open for the process's life
	hostLock *os.File // the lock file held in host mode
)

// ErrNotInstalled: pcscd or the vpcd driver is missing.
var ErrNotInstalled = errors.New("pcsctest: pcscd or vsmartcard-vpcd not installed (apt-get install -y " + Packages + ")")

// Installed reports whether pcscd and the vpcd driver are installed.
func Installed() error {
	for _, f := range []string{PCSCD, VPCDLib} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%w: %v", ErrNotInstalled, err)
		}
	}
	return nil
}

// Start starts a Server with n readers for the test and stops it at the
// test's end. A missing pcscd skips the test, or fails it when CI=true; any
// other failure to start fails it.
func Start(t testing.TB, n int) *Server {
	t.Helper()
	if err := Installed(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v (CI=true: not skipping)", err)
		}
		t.Skipf("skipping real-pcscd test: %v", err)
	}
	s, err := StartServer(Config{Readers: n, Debug: os.Getenv("PCSCTEST_DEBUG") != ""})
	if err != nil {
		t.Fatalf("pcsctest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("pcsctest: %v", err)
		}
	})
	return s
}

// StartServer starts pcscd with cfg.Readers vpcd readers and waits until it
// lists them all. It waits for a Server of this process that is still
// running to be closed. Close stops it.
func StartServer(cfg Config) (*Server, error) {
	if cfg.Readers < 1 || cfg.Readers > MaxReader {
		return nil, fmt.Errorf("%d readers: want 1..%d", cfg.Readers, MaxReader)
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 15 * time.Second
	}
	if err := Installed(); err != nil {
		return nil, err
	}
	sockOnce.Do(setupSocket)
	if sockErr != nil {
		return nil, sockErr
	}
	serverSlot <- struct{}{}
	s := &Server{cfg: cfg, unlock: func() { <-serverSlot }}
	if err := s.setup(); err != nil {
		s.cleanup()
		return nil, err
	}
	if err := s.start(); err != nil {
		s.cleanup()
		return nil, err
	}
	return s, nil
}

// setupSocket decides, once per process, where pcscd's socket lives.
func setupSocket() {
	removeStale()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("pcsctest-%d", os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		sockErr = err
		return
	}
	if err := os.MkdirAll("/run/pcscd", 0o755); err == nil {
		probe := exec.Command("unshare", "--mount", "--propagation", "private", "--",
			"mount", "--bind", dir, "/run/pcscd")
		if err := probe.Run(); err == nil {
			sockDir = dir
			sockErr = os.Setenv("PCSCLITE_CSOCK_NAME", filepath.Join(dir, "pcscd.comm"))
			return
		}
	}
	// No namespace: fall back to the host's /run/pcscd, one binary at a time.
	os.Remove(dir)
	f, err := os.OpenFile("/run/pcscd.samrack-pcsctest.lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		sockErr = err
		return
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		sockErr = err
		return
	}
	hostLock = f // held until the process exits
}

// removeStale removes the empty socket directories of test processes
// that are gone.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "pcsctest-[0-9]*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "pcsctest-"))
		if err == nil && zombieOrGone(pid) {
			os.Remove(d)
		}
	}
}

func (s *Server) setup() error {
	dir, err := os.MkdirTemp("", "pcsctest-conf-")
	if err != nil {
		return err
	}
	s.Dir = dir
	s.LogFile = filepath.Join(dir, "pcscd.log")
	conf := filepath.Join(dir, "reader.conf.d")
	drivers := filepath.Join(dir, "drivers")
	for _, d := range []string{conf, drivers} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	lib, err := os.ReadFile(VPCDLib)
	if err != nil {
		return err
	}
	nEntries := (s.cfg.Readers + 1) / 2
	ports, err := freePortPairs(nEntries)
	if err != nil {
		return err
	}
	for i, p := range ports {
		e := entry{name: fmt.Sprintf("SAMRACK%02d", i), port: p}
		s.entries = append(s.entries, e)
		// Each entry needs its own copy of the driver: vpcd keeps its
		// sockets in a global array, and pcscd loads a file only once.
		libPath := filepath.Join(drivers, fmt.Sprintf("libifdvpcd-%02d.so", i))
		if err := os.WriteFile(libPath, lib, 0o644); err != nil {
			return err
		}
		cfg := fmt.Sprintf("FRIENDLYNAME \"%s\"\nDEVICENAME   /dev/null:%d\nLIBPATH      %s\nCHANNELID    %d\n",
			e.name, p, libPath, p)
		if err := os.WriteFile(filepath.Join(conf, e.name), []byte(cfg), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// freePortPairs finds n pairs of free TCP ports P, P+1. It holds every port
// it picked until it has all of them, so pairs do not overlap.
func freePortPairs(n int) ([]int, error) {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			return nil, errors.New("no free port pairs")
		}
		p := 20000 + 2*rand.IntN(15000)
		a, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", ":"+strconv.Itoa(p+1))
		if err != nil {
			a.Close()
			continue
		}
		held = append(held, a, b)
		ports = append(ports, p)
	}
	return ports, nil
}

// start runs pcscd and waits until it lists every reader.
func (s *Server) start() error {
	args := []string{"--foreground", "-c", filepath.Join(s.Dir, "reader.conf.d")}
	if s.cfg.Debug {
		args = append(args, "-d", "-a")
	}
	var cmd *exec.Cmd
	if sockDir != "" {
		if err := os.MkdirAll(sockDir, 0o755); err != nil {
			return err
		}
		// exec twice (unshare, sh) so the PID we hold is pcscd's own.
		script := `mount --bind "$1" /run/pcscd && shift && exec "$@"`
		cmd = exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--",
			"sh", "-c", script, "sh", sockDir, PCSCD}, args...)...)
	} else {
		cmd = exec.Command(PCSCD, args...)
	}
	log, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start pcscd: %w", err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{}), log: log}
	go func() { // owned by stop, which waits for exited
		p.err = cmd.Wait()
		close(p.exited)
	}()
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()

	names, err := s.waitReaders(p)
	if err != nil {
		s.stop()
		return fmt.Errorf("%w\n%s", err, tail(s.LogFile))
	}
	s.Readers = s.Readers[:0]
	for _, name := range names {
		r, ok := s.reader(name)
		if ok {
			s.Readers = append(s.Readers, r)
		}
	}
	sort.Slice(s.Readers, func(i, j int) bool { return s.Readers[i].Name < s.Readers[j].Name })
	if len(s.Readers) < s.cfg.Readers {
		s.stop()
		return fmt.Errorf("pcscd lists readers %q, want %d SAMRACK readers", names, s.cfg.Readers)
	}
	s.Readers = s.Readers[:s.cfg.Readers]
	return nil
}

// reader maps a PC/SC reader name ("SAMRACK03 00 01") to its vpcd port.
func (s *Server) reader(name string) (Reader, bool) {
	f := strings.Fields(name)
	if len(f) != 3 {
		return Reader{}, false
	}
	slot, err := strconv.Atoi(f[2])
	if err != nil || slot > 1 {
		return Reader{}, false
	}
	for _, e := range s.entries {
		if e.name == f[0] {
			p := e.port + slot
			return Reader{Name: name, Port: p, Addr: "127.0.0.1:" + strconv.Itoa(p)}, true
		}
	}
	return Reader{}, false
}

// waitReaders polls pcscd until it lists 2 readers per entry.
func (s *Server) waitReaders(p *process) ([]string, error) {
	want := 2 * len(s.entries)
	deadline := time.Now().Add(s.cfg.StartTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		names, err := listReaders()
		if err == nil && len(names) >= want {
			return names, nil
		}
		if err == nil {
			err = fmt.Errorf("%d of %d readers", len(names), want)
		}
		last = err
		select {
		case <-p.exited:
			return nil, fmt.Errorf("pcscd exited: %v", p.err)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("pcscd not ready after %v: %v", s.cfg.StartTimeout, last)
		}
	}
}

func listReaders() ([]string, error) {
	ctx, err := scard.EstablishContext()
	if err != nil {
		return nil, err
	}
	defer ctx.Release()
	return ctx.ListReaders()
}

// PID is the process ID of the running pcscd, 0 when stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Stop stops pcscd (SIGTERM to its PID) and waits until it is gone. The
// readers' ports and names stay reserved for Restart.
func (s *Server) Stop() error { return s.stop() }

// Restart stops pcscd if it runs and starts it again with the same readers
// on the same ports, as after a crash or an upgrade.
func (s *Server) Restart() error {
	if err := s.stop(); err != nil {
		return err
	}
	return s.start()
}

// Close stops pcscd and removes its files. The Server cannot be restarted.
func (s *Server) Close() error {
	err := s.stop()
	s.cleanup()
	return err
}

func (s *Server) cleanup() {
	if s.Dir != "" && os.Getenv("PCSCTEST_KEEP") == "" {
		os.RemoveAll(s.Dir)
	}
	if sockDir != "" {
		// Empty once pcscd is gone, but it stays a mount point (EBUSY)
		// until the kernel has torn down pcscd's namespace. start makes it
		// again.
		deadline := time.Now().Add(2 * time.Second)
		tick := time.NewTicker(10 * time.Millisecond) // poll the teardown, bounded
		defer tick.Stop()
		for {
			err := os.Remove(sockDir)
			if err == nil || errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
				break
			}
			<-tick.C
		}
	}
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
}

// stop sends SIGTERM to the pcscd we started, never to anything found by
// name, and waits for it to exit: first for its state to leave running
// (/proc/PID/stat says Z once it has exited but is not reaped yet), then
// for the reaping waiter. After 10 s it sends SIGKILL.
func (s *Server) stop() error {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	defer p.log.Close()
	pid := p.cmd.Process.Pid
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGTERM pcscd %d: %w", pid, err)
	}
	kill := time.NewTimer(10 * time.Second)
	defer kill.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.exited:
			return nil
		case <-kill.C:
			p.cmd.Process.Kill()
			<-p.exited
			return fmt.Errorf("pcscd %d ignored SIGTERM for 10 s; killed", pid)
		case <-tick.C:
			if zombieOrGone(pid) {
				<-p.exited // exited: only the reaping is left
				return nil
			}
		}
	}
}

// zombieOrGone reports whether pid has exited (state Z, or no such
// process), from /proc/PID/stat rather than kill -0, which succeeds on a
// zombie.
func zombieOrGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] == 'Z' || b[i+2] == 'X'
}

// WaitPresent waits until pcscd reports a card in reader (present) or no
// card (!present), or ctx is done.
func WaitPresent(ctx context.Context, reader string, present bool) error {
	c, err := scard.EstablishContext()
	if err != nil {
		return err
	}
	defer c.Release()
	rs := []scard.ReaderState{{Reader: reader, CurrentState: scard.StateUnaware}}
	for {
		step := 100 * time.Millisecond
		if d, ok := ctx.Deadline(); ok && time.Until(d) < step {
			step = max(time.Until(d), time.Millisecond)
		}
		err := c.GetStatusChange(rs, step)
		if err != nil && !errors.Is(err, scard.ErrTimeout) {
			return fmt.Errorf("%s: %w", reader, err)
		}
		if err == nil {
			if rs[0].EventState&scard.StatePresent != 0 == present && rs[0].EventState&scard.StateMute == 0 {
				return nil
			}
			rs[0].CurrentState = rs[0].EventState &^ scard.StateChanged
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: present=%v not reached: %w", reader, present, ctx.Err())
		}
	}
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "pcscd log (" + path + "):\n" + string(b)
}
