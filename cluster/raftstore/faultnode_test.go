package raftstore

// The fault tests' node program: the test binary re-executed with
// faultNodeEnv set runs one raft node, a Store on its own data directory and
// TCP+mTLS port behind a FaultLayer, and serves a small HTTP/JSON control
// API on loopback for the test's clients and nemesis. A process of its own,
// so that the test can SIGKILL it: no deferred Close, no flushed buffers.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/samrack/samrack/cluster/state"
)

const faultNodeEnv = "SAMRACK_RAFTSTORE_FAULT_NODE"

// nodeConfig is passed to a node process as JSON in faultNodeEnv.
type nodeConfig struct {
	ID, Dir, RaftAddr           string
	CertFile, KeyFile, CAFile   string
	Bootstrap                   bool
	SnapshotThreshold, Trailing uint64
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(faultNodeEnv); cfg != "" {
		if err := runNode(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "node:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runNode runs until its stdin closes (the test ended, or died) or it is
// killed.
func runNode(js string) error {
	var cfg nodeConfig
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("no CA certificate in " + cfg.CAFile)
	}
	var ln net.Listener
	for start := time.Now(); ; { // a killed node's port is free at once; allow for a slow kernel
		if ln, err = net.Listen("tcp", cfg.RaftAddr); err == nil || time.Since(start) > 5*time.Second {
			break
		}
		<-time.After(50 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: cfg.ID, Level: hclog.Warn, Output: os.Stderr})
	trans, fl, err := NewFaultTLSTransport(ln, &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}, nil, logger)
	if err != nil {
		return err
	}
	s, err := Open(Config{Dir: cfg.Dir, ID: cfg.ID, Transport: trans, Bootstrap: cfg.Bootstrap, Logger: logger,
		Tune: func(c *raft.Config) {
			c.HeartbeatTimeout = 500 * time.Millisecond
			c.ElectionTimeout = 500 * time.Millisecond
			c.LeaderLeaseTimeout = 250 * time.Millisecond
			c.SnapshotInterval = time.Second
			if cfg.SnapshotThreshold > 0 {
				c.SnapshotThreshold, c.TrailingLogs = cfg.SnapshotThreshold, cfg.Trailing
			}
		}})
	if err != nil {
		trans.Close()
		return err
	}
	defer s.Close()
	ctl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: nodeHandler(s, fl), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ctl)
	defer srv.Close()
	fmt.Printf("READY %s %s\n", ln.Addr(), ctl.Addr())
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// Control API replies.
type (
	opReply struct {
		Changed int    `json:"changed"`
		Present bool   `json:"present"`
		Leader  string `json:"leader,omitempty"` // on 421
		Error   string `json:"error,omitempty"`
	}
	statusReply struct {
		ID       string `json:"id"`
		Leader   string `json:"leader"`
		IsLeader bool   `json:"is_leader"`
		Applied  uint64 `json:"applied"`
		Digest   string `json:"digest"`
		Halted   string `json:"halted,omitempty"`
		Cards    int    `json:"cards"`
	}
)

// Status codes of the control API: 200 done; 421 not the leader, nothing
// happened (Leader names it); 503 the outcome is unknown; 500 anything
// else (treated as unknown by the clients).
func nodeHandler(s *Store, fl *FaultLayer) http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any, err error) {
		w.Header().Set("Content-Type", "application/json")
		var nl *NotLeaderError
		switch {
		case err == nil:
		case errors.As(err, &nl):
			w.WriteHeader(http.StatusMisdirectedRequest)
			v = opReply{Leader: nl.LeaderID, Error: err.Error()}
		case errors.Is(err, ErrOutcomeUnknown):
			w.WriteHeader(http.StatusServiceUnavailable)
			v = opReply{Error: err.Error()}
		default:
			w.WriteHeader(http.StatusInternalServerError)
			v = opReply{Error: err.Error()}
		}
		json.NewEncoder(w).Encode(v)
	}
	card := func(r *http.Request) state.CardSerial {
		k, _ := strconv.ParseUint(r.FormValue("card"), 10, 64)
		return cardOf(k)
	}
	write := func(op state.Op) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c := &state.Command{Version: state.CommandVersion, Op: op, By: "fault-test", Cards: []state.CardSerial{card(r)}}
			if op == state.OpAddCards {
				c.Reason = "fault test"
			}
			res, err := s.Exec(r.Context(), c)
			reply(w, opReply{Changed: res.Cards}, err)
		}
	}
	mux.HandleFunc("POST /add", write(state.OpAddCards))
	mux.HandleFunc("POST /remove", write(state.OpRemoveCards))
	mux.HandleFunc("GET /check", func(w http.ResponseWriter, r *http.Request) {
		// A linearizable read: the barrier commits through a quorum under
		// this leader and returns once everything before it is applied.
		if err := s.Barrier(r.Context()); err != nil {
			reply(w, nil, err)
			return
		}
		_, ok := s.CardBlacklisted(card(r))
		reply(w, opReply{Present: ok}, nil)
	})
	mux.HandleFunc("GET /local", func(w http.ResponseWriter, r *http.Request) {
		var out []bool
		for _, k := range strings.Split(r.FormValue("cards"), ",") {
			n, _ := strconv.ParseUint(k, 10, 64)
			_, ok := s.CardBlacklisted(cardOf(n))
			out = append(out, ok)
		}
		reply(w, out, nil)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st := statusReply{ID: s.cfg.ID, IsLeader: s.IsLeader(), Applied: s.AppliedIndex(), Cards: s.CardCount()}
		st.Leader, _ = s.Leader()
		if h := s.Halted(); h != nil {
			st.Halted = h.Error()
		} else if d, err := s.Digest(); err == nil {
			st.Digest = hex.EncodeToString(d[:])
		}
		reply(w, st, nil)
	})
	mux.HandleFunc("POST /barrier", func(w http.ResponseWriter, r *http.Request) {
		err := s.Barrier(r.Context())
		reply(w, statusReply{Applied: s.AppliedIndex()}, err)
	})
	mux.HandleFunc("POST /addvoter", func(w http.ResponseWriter, r *http.Request) {
		reply(w, opReply{}, s.AddVoter(r.Context(), r.FormValue("id"), r.FormValue("addr")))
	})
	mux.HandleFunc("POST /removeserver", func(w http.ResponseWriter, r *http.Request) {
		reply(w, opReply{}, s.RemoveServer(r.Context(), r.FormValue("id")))
	})
	mux.HandleFunc("POST /snapshot", func(w http.ResponseWriter, r *http.Request) {
		reply(w, opReply{}, s.TakeSnapshot())
	})
	mux.HandleFunc("POST /raw", func(w http.ResponseWriter, r *http.Request) {
		b, err := hex.DecodeString(r.FormValue("hex"))
		if err == nil {
			err = s.Raft().Apply(b, 5*time.Second).Error()
		}
		reply(w, opReply{}, err)
	})
	peers := func(r *http.Request) []string {
		if p := r.FormValue("peers"); p != "" {
			return strings.Split(p, ",")
		}
		return nil
	}
	mux.HandleFunc("POST /cut", func(w http.ResponseWriter, r *http.Request) {
		fl.Cut(peers(r)...)
		reply(w, opReply{}, nil)
	})
	mux.HandleFunc("POST /heal", func(w http.ResponseWriter, r *http.Request) {
		fl.Heal(peers(r)...)
		reply(w, opReply{}, nil)
	})
	return mux
}

// cardOf is the card serial of test key k.
func cardOf(k uint64) (cs state.CardSerial) {
	for i := range 8 {
		cs[7-i] = byte(k >> (8 * i))
	}
	cs[0] |= 0x80 // never the zero serial
	return cs
}

var _ = context.Background
