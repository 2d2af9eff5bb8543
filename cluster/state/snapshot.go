package state

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
)

// Snapshot format, version 2. All integers are unsigned varints unless
// noted; strings are a length and bytes; everything is in key order, so
// equal states give equal bytes.
//
//	magic "SAMRACK-STATE" 0x00, version
//	batches: n, then n × (reason, added-at unix ns as signed varint, added-by)
//	cards:   n, then n × (serial − previous serial, batch)   batches numbered in first use
//	reader blacklist: n × (serial, reason)
//	readers: n × (serial, cipher, key, status, created-at signed varint, failed auth, note)
//	affinity: n × (serial, k, k × 16-byte SAM ID)
//	slots:   n × (node, name, 16-byte SAM ID, state, health, admin)       (version ≥ 2)
//	config:  n × (key, value)                                            (version ≥ 2)
//	operators: see writeOperators in operators.go                      (version ≥ 2)
//	CRC-32C of all of the above, 4 bytes big-endian
//
// Version 1 (before the inventory and config tables) is still read.
const (
	snapMagic   = "SAMRACK-STATE\x00"
	snapVersion = 2
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Capture is an immutable view of the state at one point of the log: the
// FSMSnapshot half of hashicorp/raft's FSM.Snapshot. Taking it is cheap (the
// big card arrays and layers are shared, only the small tables are
// copied); Persist streams it while Apply goes on.
type Capture struct {
	cards     cardView
	readerBL  map[string]string
	readers   map[string]Reader
	affinity  map[string][]ga467.SAMID
	slots     map[slotKey]Slot
	config    map[string]string
	operators map[string]Operator
}

// Capture takes a snapshot of the state. In a raft node it runs on the FSM
// goroutine, between two Applies, so it holds exactly the state at the
// last applied index. It fails once the FSM has halted (ErrNewerCommand):
// a snapshot would claim commands it never applied.
func (f *FSM) Capture() (*Capture, error) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.halted != nil {
		return nil, f.halted
	}
	f.mu.Lock()
	cv := f.t.cards.viewLocked(0, true)
	f.mu.Unlock()
	// Only wmu holders change the tables, so reading them here is safe.
	rd := make(map[string]Reader, len(f.t.readers))
	for k, r := range f.t.readers {
		rd[k] = r.clone()
	}
	return &Capture{
		cards:     cv,
		readerBL:  maps.Clone(f.t.readerBL),
		readers:   rd,
		affinity:  maps.Clone(f.t.affinity), // values are never modified in place
		slots:     maps.Clone(f.t.slots),
		config:    maps.Clone(f.t.config),
		operators: maps.Clone(f.t.operators),
	}, nil
}

// Release implements raft.FSMSnapshot; a Capture holds no resources.
func (c *Capture) Release() {}

// Snapshot writes the whole state to w: Capture, then Persist.
func (f *FSM) Snapshot(w io.Writer) error {
	c, err := f.Capture()
	if err != nil {
		return err
	}
	defer c.Release()
	return c.Persist(w)
}

// Persist writes the captured state to w (raft.FSMSnapshot.Persist takes
// a sink, which is a Writer). Safe to call concurrently with Apply.
func (c *Capture) Persist(w io.Writer) error {
	cs := &c.cards
	sw := &snapWriter{w: bufio.NewWriterSize(w, 1<<16), crc: crc32.New(crcTable)}
	sw.raw([]byte(snapMagic))
	sw.uint(snapVersion)

	// Renumber batches in first use, so the bytes do not depend on history.
	renum := map[uint32]uint32{}
	var batches []Entry
	cs.each(0, func(_ uint64, b uint32) bool {
		if _, ok := renum[b]; !ok {
			renum[b] = uint32(len(batches))
			batches = append(batches, cs.batches[b])
		}
		return true
	})
	sw.uint(uint64(len(batches)))
	for _, e := range batches {
		sw.str(e.Reason)
		sw.int(timeNS(e.AddedAt))
		sw.str(e.AddedBy)
	}
	sw.uint(uint64(cs.count))
	var prev, n uint64
	cs.each(0, func(k uint64, b uint32) bool {
		sw.uint(k - prev)
		sw.uint(uint64(renum[b]))
		prev = k
		n++
		return true
	})
	if n != uint64(cs.count) {
		return fmt.Errorf("state: snapshot: %d cards counted, %d listed", cs.count, n)
	}

	bl, rd, aff := c.readerBL, c.readers, c.affinity
	sw.uint(uint64(len(bl)))
	for _, s := range slices.Sorted(maps.Keys(bl)) {
		sw.str(s)
		sw.str(bl[s])
	}
	sw.uint(uint64(len(rd)))
	for _, s := range slices.Sorted(maps.Keys(rd)) {
		r := rd[s]
		sw.str(r.Serial)
		sw.str(r.Cipher)
		sw.str(string(r.Key))
		sw.uint(uint64(r.Status))
		sw.int(timeNS(r.CreatedAt))
		sw.uint(uint64(r.FailedAuth))
		sw.str(r.Note)
	}
	sw.uint(uint64(len(aff)))
	for _, s := range slices.Sorted(maps.Keys(aff)) {
		sw.str(s)
		sw.uint(uint64(len(aff[s])))
		for _, id := range aff[s] {
			sw.raw(id.Bytes())
		}
	}
	slots := slices.SortedFunc(maps.Values(c.slots), compareSlots)
	sw.uint(uint64(len(slots)))
	for _, s := range slots {
		sw.str(s.Node)
		sw.str(s.Name)
		sw.raw(s.SAM.Bytes())
		sw.str(s.State)
		sw.str(s.Health)
		sw.str(s.Admin)
	}
	sw.uint(uint64(len(c.config)))
	for _, k := range slices.Sorted(maps.Keys(c.config)) {
		sw.str(k)
		sw.str(c.config[k])
	}
	writeOperators(sw, c.operators)
	if sw.err != nil {
		return fmt.Errorf("state: snapshot: %w", sw.err)
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], sw.crc.Sum32())
	if _, err := sw.w.Write(sum[:]); err != nil {
		return fmt.Errorf("state: snapshot: %w", err)
	}
	if err := sw.w.Flush(); err != nil {
		return fmt.Errorf("state: snapshot: %w", err)
	}
	return nil
}

// Restore replaces the state with a snapshot. The snapshot is read and
// checked completely first; on error the state is unchanged.
func (f *FSM) Restore(r io.Reader) error {
	return f.restore(r, nil)
}

func (f *FSM) restore(r io.Reader, persist func(*tables) error) error {
	t, err := readSnapshot(r)
	if err != nil {
		return err
	}
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.halted != nil {
		return f.halted
	}
	if persist != nil {
		if err := persist(t); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.t = *t
	f.mu.Unlock()
	return nil
}

func timeNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func nsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

type snapWriter struct {
	w   *bufio.Writer
	crc hash.Hash32
	buf [binary.MaxVarintLen64]byte
	err error
}

func (s *snapWriter) raw(b []byte) {
	if s.err != nil {
		return
	}
	s.crc.Write(b)
	_, s.err = s.w.Write(b)
}

func (s *snapWriter) uint(v uint64) { s.raw(s.buf[:binary.PutUvarint(s.buf[:], v)]) }
func (s *snapWriter) int(v int64)   { s.raw(s.buf[:binary.PutVarint(s.buf[:], v)]) }
func (s *snapWriter) str(v string) {
	s.uint(uint64(len(v)))
	s.raw([]byte(v))
}

type snapReader struct {
	r   *bufio.Reader
	crc hash.Hash32
	err error
}

func (s *snapReader) fail(format string, a ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("%w: %s", ErrBadSnapshot, fmt.Sprintf(format, a...))
	}
}

func (s *snapReader) ReadByte() (byte, error) {
	b, err := s.r.ReadByte()
	if err == nil {
		s.crc.Write([]byte{b})
	}
	return b, err
}

func (s *snapReader) ioErr(err error) {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	s.fail("%v", err)
}

func (s *snapReader) raw(n int) []byte {
	if s.err != nil {
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(s.r, b); err != nil {
		s.ioErr(err)
		return nil
	}
	s.crc.Write(b)
	return b
}

func (s *snapReader) uint() uint64 {
	if s.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(s)
	if err != nil {
		s.ioErr(err)
	}
	return v
}

func (s *snapReader) int() int64 {
	if s.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(s)
	if err != nil {
		s.ioErr(err)
	}
	return v
}

// count reads a count of at most max.
func (s *snapReader) count(what string, max uint64) int {
	n := s.uint()
	if n > max {
		s.fail("%d %s", n, what)
		return 0
	}
	return int(n)
}

func (s *snapReader) str(max int) string {
	n := s.count("bytes in a string", uint64(max))
	return string(s.raw(n))
}

const maxSnapCards = 1 << 34

func readSnapshot(r io.Reader) (*tables, error) {
	s := &snapReader{r: bufio.NewReaderSize(r, 1<<16), crc: crc32.New(crcTable)}
	if string(s.raw(len(snapMagic))) != snapMagic {
		s.fail("not a samrack state snapshot")
	}
	version := s.uint()
	if s.err == nil && (version < 1 || version > snapVersion) {
		s.fail("version %d, this appliance reads 1–%d", version, snapVersion)
	}
	t := newTables()
	cs := t.cards
	nb := s.count("batches", 1<<32)
	for range nb {
		e := Entry{Reason: s.str(maxWireString), AddedAt: nsTime(s.int()), AddedBy: s.str(maxWireString)}
		if s.err != nil {
			return nil, s.err
		}
		if _, dup := cs.intern[e]; dup {
			s.fail("batch %d twice", len(cs.batches))
		}
		cs.batch(e)
	}
	nc := s.count("cards", maxSnapCards)
	keys := make([]uint64, 0, min(nc, 1<<20))
	raw := make([]uint32, 0, cap(keys))
	var prev uint64
	for range nc {
		d, b := s.uint(), s.uint()
		if s.err != nil {
			return nil, s.err
		}
		if d == 0 || prev+d < prev {
			return nil, fmt.Errorf("%w: card serials out of order", ErrBadSnapshot)
		}
		if b >= uint64(nb) {
			return nil, fmt.Errorf("%w: card batch %d of %d", ErrBadSnapshot, b, nb)
		}
		prev += d
		keys = append(keys, prev)
		raw = append(raw, uint32(b))
	}
	cs.base = buildBase(keys, raw, len(cs.batches))
	cs.count = len(keys)

	for range s.count("blacklisted readers", 1<<32) {
		serial, reason := s.str(maxWireString), s.str(maxWireString)
		if s.err != nil {
			return nil, s.err
		}
		t.readerBL[serial] = reason
	}
	for range s.count("readers", 1<<32) {
		r := Reader{
			Serial: s.str(maxWireString),
			Cipher: s.str(maxWireString),
			Key:    []byte(s.str(maxWireString)),
			Status: ReaderStatus(s.count("status", 0xff)),
		}
		r.CreatedAt = nsTime(s.int())
		r.FailedAuth = s.count("failed auths", MaxAuthThreshold)
		r.Note = s.str(maxWireString)
		if s.err != nil {
			return nil, s.err
		}
		if r.Serial == "" || r.Status == 0 {
			return nil, fmt.Errorf("%w: reader %q: no serial or status", ErrBadSnapshot, r.Serial)
		}
		t.readers[r.Serial] = r
	}
	for range s.count("affinities", 1<<32) {
		serial := s.str(maxWireString)
		ids := make([]ga467.SAMID, s.count("SAMs", MaxAffinity))
		for i := range ids {
			ids[i], _ = ga467.DecodeSAMID(s.raw(ga467.SAMIDLen))
		}
		if s.err != nil {
			return nil, s.err
		}
		t.affinity[serial] = ids
	}
	if version >= 2 {
		for range s.count("slots", 1<<32) {
			sl := Slot{Node: s.str(maxWireString), Name: s.str(maxWireString)}
			sl.SAM, _ = ga467.DecodeSAMID(s.raw(ga467.SAMIDLen))
			sl.State, sl.Health, sl.Admin = s.str(maxWireString), s.str(maxWireString), s.str(maxWireString)
			if s.err != nil {
				return nil, s.err
			}
			t.slots[sl.key()] = sl
		}
		for range s.count("config keys", 1<<32) {
			k, v := s.str(maxWireString), s.str(maxWireString)
			if s.err != nil {
				return nil, s.err
			}
			t.config[k] = v
		}
		if err := readOperators(s, &t); err != nil {
			return nil, err
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	want := s.crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(s.r, sum[:]); err != nil {
		return nil, fmt.Errorf("%w: no checksum", ErrBadSnapshot)
	}
	if binary.BigEndian.Uint32(sum[:]) != want {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	}
	if _, err := s.r.ReadByte(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data", ErrBadSnapshot)
	}
	return &t, nil
}

// VerifySnapshot reads a snapshot completely and checks it, changing
// nothing: what a restore would refuse, it refuses (ErrBadSnapshot).
func VerifySnapshot(r io.Reader) error {
	_, err := readSnapshot(r)
	return err
}
