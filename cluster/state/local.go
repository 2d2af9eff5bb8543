package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	bolt "go.etcd.io/bbolt"
)

// bbolt layout, one bucket per table.
var (
	bucketMeta     = []byte("meta")             // "schema" → "1"
	bucketCards    = []byte("cards")            // 8-byte serial → entry (see encodeEntry)
	bucketReaderBL = []byte("reader_blacklist") // reader serial → reason
	bucketReaders  = []byte("readers")          // reader serial → Reader as JSON
	bucketAffinity = []byte("affinity")         // reader serial → k × 16-byte SAM ID
	bucketSlots    = []byte("slots")            // node 0x00 slot name → Slot as JSON
	bucketConfig   = []byte("config")           // key → value
	keySchema      = []byte("schema")
	schemaVersion  = []byte("1")
)

var allBuckets = [][]byte{bucketMeta, bucketCards, bucketReaderBL, bucketReaders, bucketAffinity, bucketSlots, bucketConfig}

// Local is the pre-raft single-node Store: an FSM whose every change is
// first committed to a bbolt database, which is loaded into memory at open.
// Reads never touch the database.
//
// The appliance no longer runs on it (its state is a raft cluster, see
// cluster/raftstore); it stays to open the state.db of a data directory
// from before raft so that the raft store can migrate it, and as a second
// Store implementation under the conformance suite.
type Local struct {
	fsm    *FSM
	db     *bolt.DB
	now    func() time.Time
	closed atomic.Bool
}

// OpenLocal opens (creating if needed) the database at path and loads it.
// Only one process may have it open.
func OpenLocal(path string, opts ...Option) (*Local, error) {
	o := buildOptions(opts)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(keySchema); {
		case v == nil:
			return meta.Put(keySchema, schemaVersion)
		case !bytes.Equal(v, schemaVersion):
			return fmt.Errorf("schema %q, want %q", v, schemaVersion)
		}
		return nil
	})
	var t tables
	if err == nil {
		err = db.View(func(tx *bolt.Tx) error {
			var err error
			t, err = loadTables(tx)
			return err
		})
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	return &Local{fsm: &FSM{t: t}, db: db, now: o.now}, nil
}

// Close closes the database. Reads keep answering from memory; Apply
// returns ErrClosed.
func (l *Local) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.fsm.Close()
	// Wait for an Apply in flight, then close.
	l.fsm.wmu.Lock()
	defer l.fsm.wmu.Unlock()
	return l.db.Close()
}

// Apply implements Store: validate, commit to bbolt, then swap into memory.
func (l *Local) Apply(ctx context.Context, cmd *Command) error {
	_, err := l.Exec(ctx, cmd)
	return err
}

// Exec implements Store.
func (l *Local) Exec(ctx context.Context, cmd *Command) (Result, error) {
	c, err := prepare(ctx, cmd, l.now)
	if err != nil {
		return Result{}, err
	}
	if l.closed.Load() {
		return Result{}, ErrClosed
	}
	return l.fsm.apply(c, l.persist)
}

// persist writes an effect in one bbolt transaction. Called with fsm.wmu held.
func (l *Local) persist(e *effect) error {
	if l.closed.Load() {
		return ErrClosed
	}
	err := l.db.Update(func(tx *bolt.Tx) error {
		if len(e.addCards) > 0 {
			b := tx.Bucket(bucketCards)
			b.FillPercent = 0.9
			v := encodeEntry(e.entry)
			keys := slices.Clone(e.addCards)
			slices.Sort(keys)
			var k [8]byte
			for _, key := range keys {
				binary.BigEndian.PutUint64(k[:], key)
				if err := b.Put(k[:], v); err != nil {
					return err
				}
			}
		}
		if len(e.delCards) > 0 {
			b := tx.Bucket(bucketCards)
			var k [8]byte
			for _, key := range e.delCards {
				binary.BigEndian.PutUint64(k[:], key)
				if err := b.Delete(k[:]); err != nil {
					return err
				}
			}
		}
		if err := putTables(tx, e); err != nil {
			return err
		}
		return putOperators(tx, e.opPut)
	})
	if err != nil {
		return fmt.Errorf("state: commit: %w", err)
	}
	return nil
}

func putTables(tx *bolt.Tx, e *effect) error {
	bl, rd, aff := tx.Bucket(bucketReaderBL), tx.Bucket(bucketReaders), tx.Bucket(bucketAffinity)
	for s, reason := range e.blPut {
		if err := bl.Put([]byte(s), []byte(reason)); err != nil {
			return err
		}
	}
	for _, s := range e.blDel {
		if err := bl.Delete([]byte(s)); err != nil {
			return err
		}
	}
	for _, r := range e.rdPut {
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := rd.Put([]byte(r.Serial), v); err != nil {
			return err
		}
	}
	for _, s := range e.rdDel {
		if err := rd.Delete([]byte(s)); err != nil {
			return err
		}
	}
	for s, ids := range e.affPut {
		v := make([]byte, 0, len(ids)*ga467.SAMIDLen)
		for _, id := range ids {
			v = append(v, id.Bytes()...)
		}
		if err := aff.Put([]byte(s), v); err != nil {
			return err
		}
	}
	for _, s := range e.affDel {
		if err := aff.Delete([]byte(s)); err != nil {
			return err
		}
	}
	slots, cfg := tx.Bucket(bucketSlots), tx.Bucket(bucketConfig)
	for _, s := range e.slotPut {
		v, err := json.Marshal(s)
		if err != nil {
			return err
		}
		if err := slots.Put(slotBoltKey(s.key()), v); err != nil {
			return err
		}
	}
	for _, k := range e.slotDel {
		if err := slots.Delete(slotBoltKey(k)); err != nil {
			return err
		}
	}
	for k, v := range e.cfgPut {
		if err := cfg.Put([]byte(k), []byte(v)); err != nil {
			return err
		}
	}
	for _, k := range e.cfgDel {
		if err := cfg.Delete([]byte(k)); err != nil {
			return err
		}
	}
	return nil
}

func slotBoltKey(k slotKey) []byte { return []byte(k.node + "\x00" + k.name) }

// Snapshot writes the state to w (see FSM.Snapshot): a backup.
func (l *Local) Snapshot(w io.Writer) error { return l.fsm.Snapshot(w) }

// Restore replaces the state, in memory and in the database, with a
// snapshot; on error nothing changes.
func (l *Local) Restore(r io.Reader) error {
	if l.closed.Load() {
		return ErrClosed
	}
	return l.fsm.restore(r, func(t *tables) error {
		if l.closed.Load() {
			return ErrClosed
		}
		return l.db.Update(func(tx *bolt.Tx) error {
			for _, b := range allBuckets[1:] {
				if err := tx.DeleteBucket(b); err != nil {
					return err
				}
				if _, err := tx.CreateBucket(b); err != nil {
					return err
				}
			}
			cards := tx.Bucket(bucketCards)
			cards.FillPercent = 0.9
			var err error
			v := t.cards.viewLocked(0, true)
			v.each(0, func(key uint64, id uint32) bool {
				k := cardSerial(key)
				err = cards.Put(k[:], encodeEntry(v.batches[id]))
				return err == nil
			})
			if err != nil {
				return err
			}
			e := &effect{blPut: t.readerBL, affPut: t.affinity, cfgPut: t.config}
			for _, r := range t.readers {
				e.rdPut = append(e.rdPut, r)
			}
			for _, s := range t.slots {
				e.slotPut = append(e.slotPut, s)
			}
			if tx.Bucket(bucketOperators) != nil {
				if err := tx.DeleteBucket(bucketOperators); err != nil {
					return err
				}
			}
			if err := putOperators(tx, slices.Collect(maps.Values(t.operators))); err != nil {
				return err
			}
			return putTables(tx, e)
		})
	})
}

// Read methods, from memory (see FSM).

func (l *Local) CardBlacklisted(serial [8]byte) (Entry, bool) { return l.fsm.CardBlacklisted(serial) }
func (l *Local) CardCount() int                               { return l.fsm.CardCount() }
func (l *Local) Cards(after [8]byte, limit int) []CardEntry   { return l.fsm.Cards(after, limit) }
func (l *Local) ReaderBlacklisted(serial string) bool         { return l.fsm.ReaderBlacklisted(serial) }
func (l *Local) ReaderBlacklist() map[string]string           { return l.fsm.ReaderBlacklist() }
func (l *Local) Reader(serial string) (Reader, bool)          { return l.fsm.Reader(serial) }
func (l *Local) Readers() []Reader                            { return l.fsm.Readers() }
func (l *Local) Affinity(reader string) []ga467.SAMID         { return l.fsm.Affinity(reader) }
func (l *Local) Slots() []Slot                                { return l.fsm.Slots() }
func (l *Local) Config(key string) (string, bool)             { return l.fsm.Config(key) }

// encodeEntry is the value of a card: added-at (signed varint, unix ns),
// reason and added-by (each a uvarint length and bytes).
func encodeEntry(e Entry) []byte {
	b := binary.AppendVarint(nil, timeNS(e.AddedAt))
	b = binary.AppendUvarint(b, uint64(len(e.Reason)))
	b = append(b, e.Reason...)
	b = binary.AppendUvarint(b, uint64(len(e.AddedBy)))
	return append(b, e.AddedBy...)
}

var errEntry = errors.New("malformed card entry")

func decodeEntry(b []byte) (Entry, error) {
	ns, n := binary.Varint(b)
	if n <= 0 {
		return Entry{}, errEntry
	}
	b = b[n:]
	str := func() (string, error) {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return "", errEntry
		}
		s := string(b[n : n+int(l)])
		b = b[n+int(l):]
		return s, nil
	}
	reason, err := str()
	if err != nil {
		return Entry{}, err
	}
	by, err := str()
	if err != nil || len(b) != 0 {
		return Entry{}, errEntry
	}
	return Entry{Reason: reason, AddedAt: nsTime(ns), AddedBy: by}, nil
}

// loadTables reads the whole database into memory.
func loadTables(tx *bolt.Tx) (tables, error) {
	t := newTables()
	cs := t.cards
	byValue := map[string]uint32{} // entry bytes → batch
	n := tx.Bucket(bucketCards).Stats().KeyN
	keys := make([]uint64, 0, n)
	raw := make([]uint32, 0, n)
	err := tx.Bucket(bucketCards).ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("cards: key of %d bytes", len(k))
		}
		id, ok := byValue[string(v)]
		if !ok {
			e, err := decodeEntry(v)
			if err != nil {
				return fmt.Errorf("cards: %x: %w", k, err)
			}
			id = cs.batch(e)
			byValue[string(v)] = id
		}
		key := binary.BigEndian.Uint64(k)
		if key == 0 {
			return fmt.Errorf("cards: zero serial")
		}
		keys = append(keys, key) // bbolt iterates in byte order = key order
		raw = append(raw, id)
		return nil
	})
	if err != nil {
		return t, err
	}
	cs.base = buildBase(keys, raw, len(cs.batches))
	cs.count = len(keys)
	err = tx.Bucket(bucketReaderBL).ForEach(func(k, v []byte) error {
		t.readerBL[string(k)] = string(v)
		return nil
	})
	if err != nil {
		return t, err
	}
	err = tx.Bucket(bucketReaders).ForEach(func(k, v []byte) error {
		var r Reader
		if err := json.Unmarshal(v, &r); err != nil || r.Serial != string(k) {
			return fmt.Errorf("readers: %q: malformed record", k)
		}
		r.CreatedAt = normTime(r.CreatedAt)
		t.readers[r.Serial] = r
		return nil
	})
	if err != nil {
		return t, err
	}
	err = tx.Bucket(bucketAffinity).ForEach(func(k, v []byte) error {
		if len(v) == 0 || len(v)%ga467.SAMIDLen != 0 {
			return fmt.Errorf("affinity: %q: %d bytes", k, len(v))
		}
		ids := make([]ga467.SAMID, 0, len(v)/ga467.SAMIDLen)
		for ; len(v) > 0; v = v[ga467.SAMIDLen:] {
			id, _ := ga467.DecodeSAMID(v[:ga467.SAMIDLen])
			ids = append(ids, id)
		}
		t.affinity[string(k)] = ids
		return nil
	})
	if err != nil {
		return t, err
	}
	err = tx.Bucket(bucketSlots).ForEach(func(k, v []byte) error {
		var s Slot
		if err := json.Unmarshal(v, &s); err != nil || !bytes.Equal(slotBoltKey(s.key()), k) {
			return fmt.Errorf("slots: %q: malformed record", k)
		}
		t.slots[s.key()] = s
		return nil
	})
	if err != nil {
		if err != nil {
			return t, err
		}
		return t, loadOperators(tx, &t)
	}
	err = tx.Bucket(bucketConfig).ForEach(func(k, v []byte) error {
		t.config[string(k)] = string(v)
		return nil
	})
	if err != nil {
		return t, err
	}
	return t, loadOperators(tx, &t)
}
