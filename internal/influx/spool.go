package influx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The spool keeps batches on disk while InfluxDB cannot take them, so that
// an outage longer than the memory queue, a stop while InfluxDB is down and
// a crash lose nothing that reached it.
//
// Layout: a directory of append-only segment files named by a sequence
// number (0000000000000001.seg, ...), oldest first. A segment is a run of
// records, one per batch:
//
//	magic   uint32  0xFEEDD5A1
//	length  uint32  bytes of payload
//	lines   uint32  lines in payload
//	time    int64   unix milliseconds when the record was written
//	crc     uint32  CRC-32C (Castagnoli) of the 20 bytes above and the payload
//	payload         line protocol, newline-separated
//
// all little-endian. A record whose checksum does not match (a torn write
// at a crash, a flipped bit) is skipped: the reader looks for the next
// magic whose record checks out, so one bad record costs only itself.
//
// Replay reads the oldest segment into memory (segments are at most
// SegmentBytes plus one record) and hands out its records in order; a
// segment is deleted once every record of it was delivered. The replay
// position is not written to disk: after a crash during replay, the
// records of the oldest segment that were already delivered are written
// again, which InfluxDB absorbs (a point with the same series and time
// replaces the old one with the same values).

const (
	recordMagic  = 0xFEEDD5A1
	recordHeader = 24
	segmentExt   = ".seg"
	// DeadLetterFile, in the spool directory, receives the lines InfluxDB
	// rejected as bad data, each block headed by a comment with the time
	// and the server's answer.
	DeadLetterFile = "dead-letter.lp"
	// DefaultSegmentBytes is the size at which a segment is closed and a
	// new one started.
	DefaultSegmentBytes = 16 << 20
	// maxRecordBytes bounds a record's payload when reading, so a corrupt
	// length never makes the reader allocate more than this.
	maxRecordBytes = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SpoolOptions configure OpenSpool.
type SpoolOptions struct {
	// Dir holds the segments; it is created if missing.
	Dir string
	// MaxBytes is the disk budget: past it the oldest segments are
	// deleted and their lines counted as dropped.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment starts
	// (0: DefaultSegmentBytes, and at most MaxBytes/4).
	SegmentBytes int64
	// FsyncInterval 0 syncs the segment after every record; otherwise a
	// record is synced at the latest FsyncInterval after it was written
	// (the sink calls SyncDue on its flush ticker).
	FsyncInterval time.Duration
	Logger        *slog.Logger
	// Now is the clock of record times and ages (nil: time.Now).
	Now func() time.Time
}

// SpoolStats is what the spool holds now.
type SpoolStats struct {
	// Bytes not yet delivered (of the oldest segment, only the part not
	// yet delivered counts).
	Bytes    int64
	Segments int
	// Oldest is the write time of the oldest record not yet delivered;
	// zero when the spool is empty or it is not known yet.
	Oldest time.Time
}

// spoolHooks tell the sink's metrics what the spool lost.
type spoolHooks struct {
	dropped func(reason string, lines int)
	corrupt func(records int)
}

// Spool is a durable FIFO of batches. Safe for concurrent use.
type Spool struct {
	dir      string
	maxBytes int64
	segBytes int64
	fsync    time.Duration
	log      *slog.Logger
	now      func() time.Time
	hooks    spoolHooks

	mu       sync.Mutex
	segs     []segment // oldest first; the last is the one written
	w        *os.File  // the last segment, open for append; nil: none yet
	lastSync time.Time
	dirty    bool
	nextSeq  uint64
	// head is the oldest segment's data from headOff on, loaded for
	// replay; headLines counts the lines of it delivered so far.
	head       []byte
	headOff    int
	headSeq    uint64
	headLoaded bool
	headLines  int
	pending    int // bytes of the record handed out by Next, 0: none
	dropLogged bool
	closed     bool
}

type segment struct {
	seq   uint64
	size  int64
	lines int // -1: not known (a segment found at open)
}

func segmentName(seq uint64) string { return fmt.Sprintf("%016d%s", seq, segmentExt) }

// OpenSpool opens (or creates) the spool in opts.Dir. Segments left by an
// earlier run are kept for replay.
func OpenSpool(opts SpoolOptions) (*Spool, error) {
	switch {
	case opts.Dir == "":
		return nil, errors.New("open spool: no directory")
	case opts.MaxBytes <= 0:
		return nil, fmt.Errorf("open spool: budget %d bytes is not positive", opts.MaxBytes)
	case opts.FsyncInterval < 0:
		return nil, fmt.Errorf("open spool: fsync interval %s is negative", opts.FsyncInterval)
	case opts.Logger == nil:
		return nil, errors.New("open spool: no logger")
	}
	seg := opts.SegmentBytes
	if seg <= 0 {
		seg = DefaultSegmentBytes
	}
	seg = max(min(seg, opts.MaxBytes/4), 1)
	s := &Spool{dir: opts.Dir, maxBytes: opts.MaxBytes, segBytes: seg, fsync: opts.FsyncInterval,
		log: opts.Logger, now: opts.Now, nextSeq: 1}
	if s.now == nil {
		s.now = time.Now
	}
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, segmentExt) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segmentExt), 10, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("open spool: %w", err)
		}
		s.segs = append(s.segs, segment{seq: seq, size: info.Size(), lines: -1})
		s.nextSeq = max(s.nextSeq, seq+1)
	}
	slices.SortFunc(s.segs, func(a, b segment) int { return cmpUint(a.seq, b.seq) })
	if len(s.segs) > 0 {
		st := s.statsLocked()
		s.log.Info("spool holds batches from an earlier run, replaying them when influxdb answers",
			"dir", s.dir, "segments", st.Segments, "bytes", st.Bytes)
	}
	return s, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Spool) setHooks(h spoolHooks) {
	s.mu.Lock()
	s.hooks = h
	s.mu.Unlock()
}

// AppendRecord appends one record holding payload (n lines) to dst.
func AppendRecord(dst, payload []byte, n int, ms int64) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, recordMagic)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(ms))
	crc := crc32.Update(crc32.Checksum(dst[start:start+20], castagnoli), castagnoli, payload)
	dst = binary.LittleEndian.AppendUint32(dst, crc)
	return append(dst, payload...)
}

// Record is one batch read back from a segment.
type Record struct {
	Payload []byte
	Lines   int
	Time    int64 // unix ms
	// Size is the bytes the record takes in the segment, header included.
	Size int
}

// ReadRecord reads the record at the start of b. It returns the record;
// or an error saying what is wrong with it and skip > 0, the bytes to pass
// to reach the next record magic; or errTruncated and skip 0 when b ends
// inside the record (torn, or still being written).
func ReadRecord(b []byte) (r Record, skip int, err error) {
	if len(b) < recordHeader {
		if len(b) >= 4 && binary.LittleEndian.Uint32(b) != recordMagic {
			return Record{}, nextMagic(b), errors.New("no record magic")
		}
		return Record{}, 0, errTruncated
	}
	if binary.LittleEndian.Uint32(b) != recordMagic {
		return Record{}, nextMagic(b), errors.New("no record magic")
	}
	length := binary.LittleEndian.Uint32(b[4:])
	if length > maxRecordBytes {
		return Record{}, nextMagic(b), fmt.Errorf("record length %d is over the limit", length)
	}
	end := recordHeader + int(length)
	if len(b) < end {
		// Either torn, or its length is corrupt; the caller decides by
		// whether more data can follow.
		return Record{}, 0, errTruncated
	}
	crc := crc32.Update(crc32.Checksum(b[:20], castagnoli), castagnoli, b[recordHeader:end])
	if crc != binary.LittleEndian.Uint32(b[20:]) {
		return Record{}, nextMagic(b), errors.New("checksum mismatch")
	}
	return Record{Payload: b[recordHeader:end], Lines: int(binary.LittleEndian.Uint32(b[8:])),
		Time: int64(binary.LittleEndian.Uint64(b[12:])), Size: end}, 0, nil
}

var errTruncated = errors.New("truncated record")

// nextMagic returns the offset of the next record magic after b's first
// byte, or len(b).
func nextMagic(b []byte) int {
	var m [4]byte
	binary.LittleEndian.PutUint32(m[:], recordMagic)
	if i := bytes.Index(b[1:], m[:]); i >= 0 {
		return i + 1
	}
	return len(b)
}

// ScanRecords calls fn for each valid record of a whole segment, in order,
// and returns how many corrupt stretches it skipped (a torn record at the
// end counts as one).
func ScanRecords(b []byte, fn func(off int, r Record)) (corrupt int) {
	off := 0
	for off < len(b) {
		r, skip, err := ReadRecord(b[off:])
		switch {
		case err == nil:
			fn(off, r)
			off += r.Size
			continue
		case errors.Is(err, errTruncated):
			// In a whole segment a truncated record is a torn write or a
			// corrupt length: look for a later record.
			skip = nextMagic(b[off:])
		}
		corrupt++
		off += skip
	}
	return corrupt
}

// Append writes one batch of n lines as a record, syncing it according to
// the fsync policy, and then enforces the disk budget. On error nothing
// was appended (a partly written record is cut off again when possible).
func (s *Spool) Append(payload []byte, n int) error {
	rec := AppendRecord(make([]byte, 0, recordHeader+len(payload)), payload, n, s.now().UnixMilli())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("spool closed")
	}
	if s.w == nil || s.segs[len(s.segs)-1].size >= s.segBytes {
		if err := s.rotateLocked(); err != nil {
			return err
		}
	}
	last := &s.segs[len(s.segs)-1]
	if k, err := s.w.Write(rec); err != nil {
		if k > 0 {
			_ = s.w.Truncate(last.size)
		}
		return fmt.Errorf("append to spool segment %s: %w", segmentName(last.seq), err)
	}
	last.size += int64(len(rec))
	if last.lines >= 0 {
		last.lines += n
	}
	s.dirty = true
	if s.fsync == 0 || s.now().Sub(s.lastSync) >= s.fsync {
		if err := s.syncLocked(); err != nil {
			return err
		}
	}
	s.budgetLocked()
	return nil
}

// rotateLocked closes the segment being written and starts a new one.
func (s *Spool) rotateLocked() error {
	if s.w != nil {
		if err := s.syncLocked(); err != nil {
			return err
		}
		if err := s.w.Close(); err != nil {
			return fmt.Errorf("close spool segment: %w", err)
		}
		s.w = nil
	}
	seq := s.nextSeq
	f, err := os.OpenFile(filepath.Join(s.dir, segmentName(seq)), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("create spool segment: %w", err)
	}
	s.nextSeq++
	s.w = f
	s.segs = append(s.segs, segment{seq: seq, lines: 0})
	if d, err := os.Open(s.dir); err == nil {
		// Make the new file's name durable too.
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

func (s *Spool) syncLocked() error {
	if s.w == nil || !s.dirty {
		return nil
	}
	if err := s.w.Sync(); err != nil {
		return fmt.Errorf("sync spool segment: %w", err)
	}
	s.dirty = false
	s.lastSync = s.now()
	return nil
}

// SyncDue syncs the segment being written if it has records not synced
// for FsyncInterval or more.
func (s *Spool) SyncDue() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dirty && s.now().Sub(s.lastSync) >= s.fsync {
		return s.syncLocked()
	}
	return nil
}

// budgetLocked deletes the oldest segments while the spool is over its
// budget. The segment being written goes last, and only if it alone is
// over the budget.
func (s *Spool) budgetLocked() {
	for len(s.segs) > 0 && s.bytesLocked() > s.maxBytes {
		oldest := s.segs[0]
		if len(s.segs) == 1 {
			if err := s.rotateLocked(); err != nil {
				s.log.Error("spool over its budget and no new segment", "err", err)
				return
			}
		}
		lines := oldest.lines
		if lines < 0 {
			lines = s.countLines(oldest.seq)
		}
		if s.headLoaded && s.headSeq == oldest.seq {
			lines -= s.headLines
		}
		s.removeHeadLocked()
		if !s.dropLogged {
			s.log.Warn("spool over its disk budget: dropping its oldest batches (logged once until the spool is empty)",
				"budget_bytes", s.maxBytes, "segment", segmentName(oldest.seq), "lines", lines)
			s.dropLogged = true
		}
		if s.hooks.dropped != nil && lines > 0 {
			s.hooks.dropped("spool_budget", lines)
		}
	}
}

func (s *Spool) countLines(seq uint64) int {
	b, err := os.ReadFile(filepath.Join(s.dir, segmentName(seq)))
	if err != nil {
		return 0
	}
	n := 0
	ScanRecords(b, func(_ int, r Record) { n += r.Lines })
	return n
}

// removeHeadLocked deletes the oldest segment.
func (s *Spool) removeHeadLocked() {
	seg := s.segs[0]
	if len(s.segs) == 1 && s.w != nil {
		_ = s.w.Close()
		s.w = nil
	}
	if err := os.Remove(filepath.Join(s.dir, segmentName(seg.seq))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Error("delete spool segment", "err", err)
	}
	s.segs = s.segs[1:]
	s.head, s.headOff, s.headLoaded, s.headLines, s.pending = nil, 0, false, 0, 0
}

func (s *Spool) bytesLocked() int64 {
	var n int64
	for _, g := range s.segs {
		n += g.size
	}
	return n
}

// Next returns the oldest record not yet delivered, or ok false when the
// spool is empty. The payload stays valid until Ack or the next Next.
// Corrupt records on the way are skipped with a log line.
func (s *Spool) Next() (payload []byte, lines int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.segs) > 0 {
		seg := s.segs[0]
		if !s.headLoaded || s.headSeq != seg.seq {
			b, err := os.ReadFile(filepath.Join(s.dir, segmentName(seg.seq)))
			if err != nil {
				s.log.Error("read spool segment, skipping it", "segment", segmentName(seg.seq), "err", err)
				s.removeHeadLocked()
				continue
			}
			s.head, s.headOff, s.headSeq, s.headLoaded, s.headLines = b, 0, seg.seq, true, 0
		} else if int64(len(s.head)) < seg.size {
			// The segment grew since it was loaded (it was, or still is,
			// the one being written).
			b, err := os.ReadFile(filepath.Join(s.dir, segmentName(seg.seq)))
			if err == nil {
				s.head = b
			}
		}
		for s.headOff < len(s.head) {
			r, skip, err := ReadRecord(s.head[s.headOff:])
			if err == nil {
				s.pending = r.Size
				return r.Payload, r.Lines, true
			}
			if errors.Is(err, errTruncated) {
				if s.w != nil && len(s.segs) == 1 {
					// Being written: not torn, just not read whole.
					return nil, 0, false
				}
				skip = nextMagic(s.head[s.headOff:])
			}
			s.log.Warn("spool record corrupt, skipped", "segment", segmentName(seg.seq), "offset", s.headOff,
				"bytes", skip, "err", err)
			if s.hooks.corrupt != nil {
				s.hooks.corrupt(1)
			}
			s.headOff += skip
		}
		if s.w != nil && len(s.segs) == 1 {
			// Everything written was delivered: start afresh.
			s.removeHeadLocked()
			s.dropLogged = false
			return nil, 0, false
		}
		s.removeHeadLocked()
	}
	s.dropLogged = false
	return nil, 0, false
}

// Ack marks the record returned by the last Next as delivered.
func (s *Spool) Ack(lines int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == 0 {
		return
	}
	s.headOff += s.pending
	s.headLines += lines
	s.pending = 0
	// The head segment may have grown since it was loaded: compare with
	// its size, not with what was loaded.
	if len(s.segs) > 0 && int64(s.headOff) >= s.segs[0].size && (s.w == nil || len(s.segs) > 1) {
		s.removeHeadLocked()
	}
}

// Empty reports whether nothing waits for replay.
func (s *Spool) Empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.segs) == 0 {
		return true
	}
	return len(s.segs) == 1 && s.headLoaded && s.headOff >= int(s.segs[0].size)
}

// Stats returns the spool's size and the age of its oldest record.
func (s *Spool) Stats() SpoolStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statsLocked()
}

func (s *Spool) statsLocked() SpoolStats {
	st := SpoolStats{Bytes: s.bytesLocked(), Segments: len(s.segs)}
	if len(s.segs) == 0 {
		return st
	}
	if s.headLoaded && s.headSeq == s.segs[0].seq {
		st.Bytes -= int64(s.headOff) // delivered, not deleted yet
	}
	// The oldest record not delivered is at headOff of the loaded head,
	// or first in the oldest segment's file.
	var hdr []byte
	if s.headLoaded && s.headSeq == s.segs[0].seq {
		if s.headOff+recordHeader <= len(s.head) {
			hdr = s.head[s.headOff:]
		}
	} else if f, err := os.Open(filepath.Join(s.dir, segmentName(s.segs[0].seq))); err == nil {
		var b [recordHeader]byte
		if _, err := f.ReadAt(b[:], 0); err == nil {
			hdr = b[:]
		}
		_ = f.Close()
	}
	if len(hdr) >= recordHeader && binary.LittleEndian.Uint32(hdr) == recordMagic {
		st.Oldest = time.UnixMilli(int64(binary.LittleEndian.Uint64(hdr[12:])))
	}
	return st
}

// Close syncs and closes the segment being written. Segments stay on disk.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if len(s.segs) == 1 && s.headLoaded && s.headSeq == s.segs[0].seq && int64(s.headOff) >= s.segs[0].size {
		// Every record was delivered: nothing to replay at the next start.
		s.removeHeadLocked()
	}
	if s.w == nil {
		return nil
	}
	err := s.syncLocked()
	if cerr := s.w.Close(); err == nil {
		err = cerr
	}
	s.w = nil
	return err
}

// deadLetter appends rejected lines to the dead-letter file with a comment
// line saying when and why.
func (s *Spool) deadLetter(lines []byte, status int, msg string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(s.dir, DeadLetterFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open dead-letter file: %w", err)
	}
	var b []byte
	b = fmt.Appendf(b, "# %s http %d: %s\n", s.now().UTC().Format(time.RFC3339Nano), status, strings.ReplaceAll(msg, "\n", " "))
	b = append(b, lines...)
	if len(lines) > 0 && lines[len(lines)-1] != '\n' {
		b = append(b, '\n')
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write dead-letter file: %w", err)
	}
	return nil
}
