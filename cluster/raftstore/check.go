package raftstore

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrDamaged reports a data directory whose raft state is damaged (a
// power cut in the middle of a write, a failing disk). The node refuses to
// start rather than take part in raft with a log or vote it may have lost:
// a node that forgot entries it acknowledged could help elect a leader
// without them and lose committed writes. The error says what to do.
var ErrDamaged = errors.New("raftstore: raft state damaged")

// damaged is the error for node id whose data in cfg.Dir is damaged.
func damaged(cfg Config, what string, cause error) error {
	return fmt.Errorf("%w: %s (%v). Node %s must not rejoin with it: on the leader remove node %s from the cluster, "+
		"move %s aside and join this appliance again as a new node; it is sent the state by the leader. "+
		"A cluster of one has no other copy: move the directory aside and restore the last backup",
		ErrDamaged, what, cause, cfg.ID, cfg.ID, cfg.Dir)
}

// checkLogStore checks raft.db before raft-boltdb opens it: the file must
// hold every page its meta page counts (a truncated file is refused) and
// pass bbolt's consistency check. It reads the whole file once, which is
// small: snapshots compact the log.
func checkLogStore(cfg Config, path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("raftstore: %w", err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return fmt.Errorf("raftstore: %s is in use by another process", path)
		}
		return damaged(cfg, path+" cannot be opened", err)
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		if tx.Size() > fi.Size() {
			return damaged(cfg, path+" is truncated", fmt.Errorf("%d bytes, its pages need %d", fi.Size(), tx.Size()))
		}
		var errs []string
		for err := range tx.Check() {
			if len(errs) < 3 {
				errs = append(errs, err.Error())
			}
		}
		if len(errs) > 0 {
			return damaged(cfg, path+" is inconsistent", errors.New(strings.Join(errs, "; ")))
		}
		return nil
	})
}
