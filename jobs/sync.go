// Package jobs holds the night's jobs, one file each: sync (the SIS into
// the snapshot), evaluate (rules into obligations and notices), deliver
// (a notice to SMTP or SMS) and digest (the daily emails). The rules, the
// calendar, validation and the snapshot store live in the packages beside
// this one.
package jobs

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/validate"
	"github.com/iec-almaty/sisnotify/store"
)

// hashVersion is mixed into every row hash. Bump it when validation
// changes, so the next sync re-validates every row. The students' and
// travel requests' hashes are the SIS's own (sis.HashVersion, part of
// this one) or, from a SIS that cannot hash, made here like the others:
// the two kinds never agree, so a SIS that changes kind has every row
// taken for changed once, and no change is missed.
const hashVersion = "sisnotify-row-v3/" + sis.HashVersion

// Sync reads the SIS in one consistent pass and brings the snapshot up to
// date: new and changed rows validated and written, missing rows marked
// removed, data problems recorded.
type Sync struct {
	SIS *sis.Reader
	DB  *sqlx.DB
	// Guard, when set, holds a night whose SIS looks broken (see
	// store.Guard): the sync fails, the previous snapshot stays.
	Guard *store.Guard
	// TrustUpdatedAt: the SIS moves a row's updated_at whenever the row
	// changes (SISNOTIFY_SIS_UPDATED_AT=trusted), so a night may read
	// only the students and travel requests whose updated_at moved since
	// the last good sync (less changesMargin). A week after the last full
	// read, after a change of validation (hashVersion), and whenever the
	// SIS's count of keys shows a row the changes do not account for (one
	// deleted), the sync reads in full.
	TrustUpdatedAt bool
	Log            *slog.Logger
	// hashChanges overrides maxHashChanges when not 0; below 0, no table
	// is read by hashes (tests compare the two reads).
	hashChanges int
	// checkEveryRow: the checks across tables look at every row tonight,
	// not at the changed ones only (tests compare the two).
	checkEveryRow bool
}

const (
	// changesMargin is how far before the last read's start a read of
	// changes begins: an SIS transaction that began before that read and
	// committed after it stamped its rows with its own start, and the
	// clock of the SIS's application may differ from its database's.
	changesMargin = 24 * time.Hour
	// fullReadEvery: a read of changes needs a full read within this many
	// days, so a change that did not move updated_at is found within a
	// week.
	fullReadEvery = 7
)

// SyncResult is what one sync did.
type SyncResult struct {
	SyncID int64                              `json:"sync_id"`
	AsOf   string                             `json:"as_of"`
	Tables map[store.Entity]store.TableCounts `json:"tables"`
	// ChangesSince, when set, is where the read of changes began: the
	// students and travel requests whose updated_at is this or later
	// were read, and the others kept as they were.
	ChangesSince *time.Time    `json:"changes_since,omitempty"`
	Errors       int64         `json:"problems_error"`
	Warnings     int64         `json:"problems_warning"`
	Duration     time.Duration `json:"duration_ns"`
}

// Changed is the number of rows new, changed or removed across tables.
func (r SyncResult) Changed() int64 {
	var n int64
	for _, c := range r.Tables {
		n += c.New + c.Changed + c.Removed
	}
	return n
}

// Run syncs for the as-of date asOf (used to judge impossible dates) and
// commits the new snapshot. A failed sync is rolled back and logged in
// sisnotify.syncs; the previous snapshot stays.
func (s *Sync) Run(ctx context.Context, asOf date.Date) (SyncResult, error) {
	w, res, err := s.Stage(ctx, asOf)
	if err == nil {
		counts, _ := json.Marshal(res)
		err = w.Commit(ctx, counts)
	}
	if err != nil {
		if errors.Is(err, store.ErrBusy) {
			return res, fmt.Errorf("sync: %w", err)
		}
		if rerr := store.RecordSyncFailure(context.WithoutCancel(ctx), s.DB, asOf.String(), err); rerr != nil {
			s.logger().ErrorContext(ctx, "record failed sync", "err", rerr)
		}
		return res, err
	}
	return res, nil
}

func (s *Sync) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// Stage does the sync's work in a transaction it leaves open: the caller
// commits it (w.Commit) or rolls it back (w.Rollback, as a dry run does
// after evaluating in it through w.Conn()).
func (s *Sync) Stage(ctx context.Context, asOf date.Date) (*store.SyncWriter, SyncResult, error) {
	w, res, err := s.stage(ctx, asOf, s.SIS)
	if err != nil && errors.Is(err, store.ErrOrder) && !s.SIS.CollateC {
		// The key's collation looked like byte order and is not: read
		// again in byte order, as every night will have to.
		s.logger().WarnContext(ctx, "the SIS's keys are not in byte order by their collation; reading them again with COLLATE \"C\"", "err", err)
		r := *s.SIS
		r.CollateC = true
		return s.stage(ctx, asOf, &r)
	}
	return w, res, err
}

func (s *Sync) stage(ctx context.Context, asOf date.Date, reader *sis.Reader) (w *store.SyncWriter, res SyncResult, err error) {
	start := time.Now()
	res.AsOf = asOf.String()
	log := s.logger()
	open, err := store.BeginSync(ctx, s.DB, res.AsOf)
	if err != nil {
		return nil, res, fmt.Errorf("sync: %w", err)
	}
	w = open
	open.Guard = s.Guard
	open.CheckEveryRow = s.checkEveryRow
	defer func() {
		res.Duration = time.Since(start)
		if err != nil {
			open.Rollback()
		}
	}()
	res.SyncID = w.SyncID()
	since, changes, err := s.changesSince(ctx, w, res.AsOf)
	if err != nil {
		return nil, res, fmt.Errorf("sync: %w", err)
	}
	check := validate.NewChecker(asOf)
	err = reader.Read(ctx, func(ctx context.Context, snap *sis.Snapshot) error {
		w.SetRead(snap.Began(), hashVersion)
		if !snap.CanHash() {
			log.InfoContext(ctx, "sync: the SIS cannot hash its rows (PostgreSQL 11 or later can); its students and travel requests are read and hashed here")
		}
		for _, t := range []struct {
			table  sis.Table
			entity store.Entity
			// skip is the column left out of the hash (updated_at),
			// or -1. A table with one is hashed by the SIS when it can
			// (sis.Snapshot.CanHash), and a full read compares the
			// hashes first.
			skip   int
			encode encodeFunc
		}{
			{sis.Faculties, store.EntityFaculty, -1, (*validator).faculty},
			{sis.AcademicPeriods, store.EntityPeriod, -1, (*validator).period},
			{sis.Students, store.EntityStudent, sis.StudentUpdatedAt, (*validator).student},
			{sis.TravelRequests, store.EntityTravel, sis.TravelUpdatedAt, (*validator).travel},
		} {
			hashed := t.skip >= 0 && snap.CanHash()
			tstart := time.Now()
			byChanges := changes && t.table.UpdatedAt() != ""
			var tw *store.TableWriter
			var err error
			if byChanges {
				var keys int64
				if keys, err = snap.Keys(ctx, t.table); err == nil {
					tw, err = w.TableChanges(ctx, t.entity, keys)
				}
			} else {
				tw, err = w.Table(ctx, t.entity)
			}
			if err != nil {
				return err
			}
			limit := maxHashChanges
			if s.hashChanges != 0 {
				limit = s.hashChanges
			}
			byHashes := !byChanges && hashed && !tw.Direct() && limit >= 0
			if byHashes {
				err = syncByHashes(ctx, snap, tw, t.table, limit, check, t.encode)
			} else {
				err = syncTable(ctx, snap, tw, t.table, since, byChanges, hashed, t.skip, check, t.encode)
			}
			if (byChanges && errors.Is(err, store.ErrIncomplete)) || (byHashes && errors.Is(err, errManyChanges)) {
				msg := "sync table: the changes do not account for every row; reading it in full"
				if byHashes {
					msg = "sync table: more rows changed than a read by hashes gathers; reading it in full"
				}
				log.InfoContext(ctx, msg, "table", string(t.entity), "err", err)
				byChanges, byHashes = false, false
				if tw, err = w.Table(ctx, t.entity); err != nil {
					return err
				}
				err = syncTable(ctx, snap, tw, t.table, since, false, hashed, t.skip, check, t.encode)
			}
			if err != nil {
				return err
			}
			if byChanges {
				res.ChangesSince = &since
			}
			c := w.Counts()[t.entity]
			log.InfoContext(ctx, "sync table", "table", string(t.entity), "read", c.Read, "new", c.New,
				"changed", c.Changed, "removed", c.Removed, "rejected", c.Rejected, "direct_load", tw.Direct(),
				"changes_only", byChanges, "by_hashes", byHashes, "duration", time.Since(tstart).Round(time.Millisecond))
		}
		return nil
	})
	if err != nil {
		return nil, res, fmt.Errorf("sync: %w", err)
	}
	fstart := time.Now()
	if res.Errors, res.Warnings, err = w.Finish(ctx); err != nil {
		return nil, res, fmt.Errorf("sync: %w", err)
	}
	log.InfoContext(ctx, "sync checks across tables", "every_row", w.FullChecks(), "duration", time.Since(fstart).Round(time.Millisecond))
	res.Tables = w.Counts()
	res.Duration = time.Since(start)
	return w, res, nil
}

// changesSince decides whether tonight reads only changes, and from when.
func (s *Sync) changesSince(ctx context.Context, w *store.SyncWriter, asOf string) (time.Time, bool, error) {
	if !s.TrustUpdatedAt {
		return time.Time{}, false, nil
	}
	last, ok, err := w.ChangesSince(ctx, asOf, fullReadEvery, hashVersion)
	if err != nil || !ok {
		if err == nil {
			s.logger().InfoContext(ctx, "sync: reading the SIS in full (no full read of this version in the last week)", "days", fullReadEvery)
		}
		return time.Time{}, false, err
	}
	return last.Add(-changesMargin), true, nil
}

// syncTable streams one table into tw (its changes since since, or all
// of it) and closes tw. hashed: the SIS hashes the table's rows; else
// they are hashed here, every column but skip.
func syncTable(ctx context.Context, snap *sis.Snapshot, tw *store.TableWriter, table sis.Table, since time.Time, byChanges, hashed bool, skip int, check *validate.Checker, encode encodeFunc) error {
	stream := func(fn func(*sis.Row) error) error { return snap.Stream(ctx, table, fn) }
	switch {
	case byChanges:
		stream = func(fn func(*sis.Row) error) error { return snap.StreamSince(ctx, table, since, fn) }
	case hashed:
		stream = func(fn func(*sis.Row) error) error { return snap.StreamHashed(ctx, table, fn) }
	}
	return closeAfter(ctx, tw, table, streamTable(ctx, stream, tw, false, skip, check, encode))
}

// closeAfter closes tw after its rows were streamed with err.
func closeAfter(ctx context.Context, tw *store.TableWriter, table sis.Table, err error) error {
	if err != nil {
		_ = tw.Close(ctx)
		if errors.Is(err, store.ErrOrder) {
			return fmt.Errorf("%s: %w: the SIS view must return rows ordered by key (COLLATE \"C\")", table.Name, err)
		}
		return err
	}
	return tw.Close(ctx)
}

// errManyChanges: more rows changed than a read by hashes keeps keys for.
var errManyChanges = errors.New("more rows changed than a read by hashes gathers")

// maxHashChanges bounds the keys a read by hashes gathers (a few MB); a
// table with more changed rows is read in full. keysPerRead is how many
// changed rows one read by keys asks for.
const (
	maxHashChanges = 100_000
	keysPerRead    = 10_000
)

// syncByHashes syncs a table the snapshot already holds in two passes
// over the same SIS snapshot: the keys and the SIS's row hashes, compared
// with the snapshot's, give the rows new or changed (and those removed);
// then only those rows are read, validated and written. On an ordinary
// night that is a few hundred rows of a million, and the SIS sends
// hashes instead of rows. When more than limit rows changed, tw is
// discarded with nothing written and errManyChanges returned: the caller
// reads the table in full.
func syncByHashes(ctx context.Context, snap *sis.Snapshot, tw *store.TableWriter, table sis.Table, limit int, check *validate.Checker, encode encodeFunc) error {
	var keys []string
	many := false
	err := snap.Hashes(ctx, table, func(r *sis.Row) error {
		if many {
			// The stream goes on to its end: a COPY stopped midway
			// would end the SIS's connection, and the full read must
			// come from the same snapshot.
			return nil
		}
		id := r.Bytes(0)
		if len(id) == 0 {
			tw.Reject()
			return nil
		}
		changed, err := tw.Next(id, r.Hash())
		if err != nil || !changed {
			return err
		}
		if len(keys) == limit {
			many, keys = true, nil
			return nil
		}
		keys = append(keys, string(id))
		return nil
	})
	if err == nil && many {
		if err := tw.Discard(); err != nil {
			return err
		}
		return fmt.Errorf("%s: %w (%d)", table.Name, errManyChanges, limit)
	}
	if err != nil {
		return closeAfter(ctx, tw, table, err)
	}
	// Every key asked for must come back: a row that did not would be
	// counted changed and never written.
	want, got := len(keys), 0
	var prev []byte
	stream := func(fn func(*sis.Row) error) error {
		counted := func(r *sis.Row) error {
			if id := r.Bytes(0); got == 0 || !bytes.Equal(id, prev) {
				got, prev = got+1, append(prev[:0], id...)
			}
			return fn(r)
		}
		for len(keys) > 0 {
			n := min(len(keys), keysPerRead)
			if err := snap.StreamKeys(ctx, table, keys[:n], counted); err != nil {
				return err
			}
			keys = keys[n:]
		}
		if got != want {
			return fmt.Errorf("read %s: the SIS gave %d of the %d changed rows asked for by key", table.Name, got, want)
		}
		return nil
	}
	return closeAfter(ctx, tw, table, streamTable(ctx, stream, tw, true, -1, check, encode))
}

// encodeFunc validates one changed row and encodes it for the table.
type encodeFunc func(v *validator, e store.Encoder, r *sis.Row, hash uint64, out *store.Encoded) error

// rowBatch carries changed rows from the SIS stream through a validator
// to the snapshot's writer. Rows travel in batches because a channel
// operation per row costs about as much as validating the row.
type rowBatch struct {
	n    int // rows in use
	rows [batchRows]sis.Row
	hash [batchRows]uint64
	enc  [batchRows]store.Encoded
	err  error
}

const (
	// batchRows is the number of rows of a batch.
	batchRows = 64
	// batchDepth bounds the batches between the stream and the writer,
	// and so the memory of a sync, whatever the roster's size.
	batchDepth = 16
)

// streamTable merges one SIS table against the snapshot. The stream's
// goroutine hashes every row and compares it with the snapshot's; rows that
// changed are validated on every core (validation is the costly part of an
// initial load) and written by one writer goroutine, while the stream goes
// on reading: the SIS's COPY out and the snapshot's COPY in run at once.
//
// offered: the rows were offered to tw already (syncByHashes), and each
// is written once, the first of its key. A row without the SIS's hash
// is hashed here, every column but skip.
func streamTable(ctx context.Context, stream func(func(*sis.Row) error) error, tw *store.TableWriter, offered bool, skip int, check *validate.Checker, encode encodeFunc) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	free := make(chan *rowBatch, batchDepth)
	for i := 0; i < batchDepth; i++ {
		free <- &rowBatch{}
	}
	in := make(chan *rowBatch, batchDepth)
	out := make(chan *rowBatch, batchDepth)
	enc := tw.Encoder()
	var wg sync.WaitGroup
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := &validator{check: check}
			for b := range in {
				for i := 0; i < b.n && b.err == nil; i++ {
					b.err = encode(v, enc, &b.rows[i], b.hash[i], &b.enc[i])
				}
				out <- b
			}
		}()
	}
	written := make(chan error, 1)
	go func() { written <- writeBatches(ctx, cancel, tw, out, free) }()

	var h hasher
	var cur *rowBatch
	var last []byte // offered: the key of the last row
	serr := stream(func(r *sis.Row) error {
		id := r.Bytes(0)
		sum := r.Hash()
		switch {
		case offered:
			if last != nil && bytes.Equal(id, last) {
				return nil // a duplicate key, counted by Next
			}
			last = append(last[:0], id...)
		case len(id) == 0:
			tw.Reject()
			return nil
		default:
			if !r.Hashed() {
				sum = h.hash(r, skip)
			}
			changed, err := tw.Next(id, sum)
			if err != nil || !changed {
				return err
			}
		}
		if cur == nil {
			select {
			case cur = <-free:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		r.CopyTo(&cur.rows[cur.n])
		cur.hash[cur.n] = sum
		if cur.n++; cur.n == batchRows {
			in <- cur
			cur = nil
		}
		return nil
	})
	if cur != nil && cur.n > 0 {
		in <- cur
	}
	close(in)
	wg.Wait()
	close(out)
	if werr := <-written; werr != nil {
		return werr
	}
	return serr
}

// writeBatches writes the validated batches in the order they come and
// hands them back to free. After an error it writes nothing more, cancels
// the stream and keeps draining, so no goroutine blocks.
func writeBatches(ctx context.Context, cancel context.CancelCauseFunc, tw *store.TableWriter, out <-chan *rowBatch, free chan<- *rowBatch) error {
	var werr error
	for b := range out {
		if werr == nil {
			werr = b.err
			for i := 0; i < b.n && werr == nil; i++ {
				werr = tw.Write(ctx, &b.enc[i])
			}
			if werr != nil {
				cancel(werr)
			}
		}
		b.n, b.err = 0, nil
		free <- b
	}
	return werr
}

// hasher hashes raw rows, reusing its buffer.
type hasher struct {
	buf []byte
}

// hash is a 64-bit hash of the raw row, every column but skip, with NULL
// distinct from the empty string. The row is laid out in one buffer and
// hashed at once, which gives the same hash as writing it piece by piece
// (xxhash is a stream hash) for less.
func (h *hasher) hash(r *sis.Row, skip int) uint64 {
	b := append(h.buf[:0], hashVersion...)
	for i := 0; i < r.Len(); i++ {
		if i == skip {
			continue
		}
		if r.Null(i) {
			b = append(b, 0xff)
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(r.Bytes(i))))
		b = append(b, r.Bytes(i)...)
	}
	h.buf = b
	return xxhash.Sum64(b)
}

// validator validates rows into reusable values; one per goroutine.
type validator struct {
	check    *validate.Checker
	problems []validate.Problem
	studentV validate.Student
	travelV  validate.Travel
	facultyV validate.Faculty
	periodV  validate.Period
}

func (v *validator) student(e store.Encoder, r *sis.Row, h uint64, out *store.Encoded) error {
	v.problems = v.check.Student(r, &v.studentV, v.problems[:0])
	return e.Student(out, &v.studentV, h, v.problems)
}

func (v *validator) travel(e store.Encoder, r *sis.Row, h uint64, out *store.Encoded) error {
	v.problems = v.check.Travel(r, &v.travelV, v.problems[:0])
	return e.Travel(out, &v.travelV, h, v.problems)
}

func (v *validator) faculty(e store.Encoder, r *sis.Row, h uint64, out *store.Encoded) error {
	v.problems = v.check.Faculty(r, &v.facultyV, v.problems[:0])
	return e.Faculty(out, &v.facultyV, h, v.problems)
}

func (v *validator) period(e store.Encoder, r *sis.Row, h uint64, out *store.Encoded) error {
	v.problems = v.check.Period(r, &v.periodV, v.problems[:0])
	return e.Period(out, &v.periodV, h, v.problems)
}
