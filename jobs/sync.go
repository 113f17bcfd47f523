// Package jobs holds the night's jobs, one file each: sync (the SIS into
// the snapshot), evaluate (rules into obligations and notices), deliver
// (a notice to SMTP or SMS) and digest (the daily emails). The rules, the
// calendar, validation and the snapshot store live in the packages beside
// this one.
package jobs

import (
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
	"github.com/iec-almaty/sisnotify/jobs/internal/pgcopy"
	"github.com/iec-almaty/sisnotify/jobs/snapshot"
	"github.com/iec-almaty/sisnotify/jobs/validate"
)

// hashVersion is mixed into every row hash. Bump it when validation
// changes, so the next sync re-validates every row.
const hashVersion = "sisnotify-row-v2"

// Sync reads the SIS in one consistent pass and brings the snapshot up to
// date: new and changed rows validated and written, missing rows marked
// removed, data problems recorded.
type Sync struct {
	SIS *sis.Reader
	DB  *sqlx.DB
	// Guard, when set, holds a night whose SIS looks broken (see
	// snapshot.Guard): the sync fails, the previous snapshot stays.
	Guard *snapshot.Guard
	Log   *slog.Logger
}

// SyncResult is what one sync did.
type SyncResult struct {
	SyncID   int64                               `json:"sync_id"`
	AsOf     string                              `json:"as_of"`
	Tables   map[snapshot.Entity]snapshot.Counts `json:"tables"`
	Errors   int64                               `json:"problems_error"`
	Warnings int64                               `json:"problems_warning"`
	Duration time.Duration                       `json:"duration_ns"`
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
		if errors.Is(err, snapshot.ErrBusy) {
			return res, fmt.Errorf("sync: %w", err)
		}
		if rerr := snapshot.RecordFailure(context.WithoutCancel(ctx), s.DB, asOf.String(), err); rerr != nil {
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
func (s *Sync) Stage(ctx context.Context, asOf date.Date) (w *snapshot.Writer, res SyncResult, err error) {
	start := time.Now()
	res.AsOf = asOf.String()
	log := s.logger()
	open, err := snapshot.Begin(ctx, s.DB, res.AsOf)
	if err != nil {
		return nil, res, fmt.Errorf("sync: %w", err)
	}
	w = open
	open.Guard = s.Guard
	defer func() {
		res.Duration = time.Since(start)
		if err != nil {
			open.Rollback()
		}
	}()
	res.SyncID = w.SyncID()
	check := validate.NewChecker(asOf)
	err = s.SIS.Read(ctx, func(ctx context.Context, snap *sis.Snapshot) error {
		for _, t := range []struct {
			table  sis.Table
			entity snapshot.Entity
			skip   int // the column left out of the hash (updated_at), or -1
			encode encodeFunc
		}{
			{sis.Faculties, snapshot.EntityFaculty, -1, (*validator).faculty},
			{sis.AcademicPeriods, snapshot.EntityPeriod, -1, (*validator).period},
			{sis.Students, snapshot.EntityStudent, sis.StudentUpdatedAt, (*validator).student},
			{sis.TravelRequests, snapshot.EntityTravel, sis.TravelUpdatedAt, (*validator).travel},
		} {
			tstart := time.Now()
			tw, err := w.Table(ctx, t.entity)
			if err != nil {
				return err
			}
			err = streamTable(ctx, snap, tw, t.table, t.skip, check, t.encode)
			if err != nil {
				_ = tw.Close(ctx)
				if errors.Is(err, snapshot.ErrOrder) {
					return fmt.Errorf("%s: %w: the SIS view must return rows ordered by key (COLLATE \"C\")", t.table.Name, err)
				}
				return err
			}
			if err := tw.Close(ctx); err != nil {
				return err
			}
			c := w.Counts()[t.entity]
			log.InfoContext(ctx, "sync table", "table", string(t.entity), "read", c.Read, "new", c.New,
				"changed", c.Changed, "removed", c.Removed, "rejected", c.Rejected, "duration", time.Since(tstart).Round(time.Millisecond))
		}
		return nil
	})
	if err != nil {
		return nil, res, fmt.Errorf("sync: %w", err)
	}
	if res.Errors, res.Warnings, err = w.Finish(ctx); err != nil {
		return nil, res, fmt.Errorf("sync: %w", err)
	}
	res.Tables = w.Counts()
	res.Duration = time.Since(start)
	return w, res, nil
}

// encodeFunc validates one changed row and encodes it for staging.
type encodeFunc func(v *validator, r *sis.Row, hash uint64, l *pgcopy.Line) error

// stageJob carries one changed row from the SIS stream through a
// validator to the staging COPY.
type stageJob struct {
	row  sis.Row
	hash uint64
	line []byte
	err  error
}

// stageDepth bounds the rows between the stream and the staging COPY, and
// so the memory of a sync, whatever the roster's size.
const stageDepth = 256

// streamTable merges one SIS table against the snapshot. The stream's
// goroutine hashes every row and compares it with the snapshot's; rows that
// changed are validated on every core (libphonenumber makes validation the
// costly part of an initial load) and staged by one writer goroutine.
func streamTable(ctx context.Context, snap *sis.Snapshot, tw *snapshot.TableWriter, table sis.Table, skip int, check *validate.Checker, encode encodeFunc) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	free := make(chan *stageJob, stageDepth)
	for i := 0; i < stageDepth; i++ {
		free <- &stageJob{}
	}
	in := make(chan *stageJob, stageDepth)
	out := make(chan *stageJob, stageDepth)
	var wg sync.WaitGroup
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := &validator{check: check}
			var l pgcopy.Line
			for j := range in {
				if j.err = encode(v, &j.row, j.hash, &l); j.err == nil {
					j.line = append(j.line[:0], l.B...)
				}
				out <- j
			}
		}()
	}
	written := make(chan error, 1)
	go func() {
		var werr error
		for j := range out {
			if werr == nil {
				if werr = j.err; werr == nil {
					werr = tw.WriteLine(ctx, j.line)
				}
				if werr != nil {
					cancel(werr)
				}
			}
			free <- j
		}
		written <- werr
	}()

	var h hasher
	serr := snap.Stream(ctx, table, func(r *sis.Row) error {
		if len(r.Bytes(0)) == 0 {
			tw.Reject()
			return nil
		}
		sum := h.hash(r, skip)
		changed, err := tw.Next(string(r.Bytes(0)), sum)
		if err != nil || !changed {
			return err
		}
		var j *stageJob
		select {
		case j = <-free:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		r.CopyTo(&j.row)
		j.hash, j.err = sum, nil
		in <- j
		return nil
	})
	close(in)
	wg.Wait()
	close(out)
	if werr := <-written; werr != nil {
		return werr
	}
	return serr
}

// hasher hashes raw rows, reusing its state.
type hasher struct {
	digest xxhash.Digest
	lenBuf [binary.MaxVarintLen64]byte
}

// hash is a 64-bit hash of the raw row, every column but skip, with NULL
// distinct from the empty string.
func (h *hasher) hash(r *sis.Row, skip int) uint64 {
	d := &h.digest
	d.Reset()
	_, _ = d.WriteString(hashVersion)
	for i := 0; i < r.Len(); i++ {
		if i == skip {
			continue
		}
		if r.Null(i) {
			_, _ = d.Write([]byte{0xff})
			continue
		}
		n := binary.PutUvarint(h.lenBuf[:], uint64(len(r.Bytes(i))))
		_, _ = d.Write(h.lenBuf[:n])
		_, _ = d.Write(r.Bytes(i))
	}
	return d.Sum64()
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

func (v *validator) student(r *sis.Row, h uint64, l *pgcopy.Line) error {
	v.problems = v.check.Student(r, &v.studentV, v.problems[:0])
	return snapshot.EncodeStudent(l, &v.studentV, h, v.problems)
}

func (v *validator) travel(r *sis.Row, h uint64, l *pgcopy.Line) error {
	v.problems = v.check.Travel(r, &v.travelV, v.problems[:0])
	return snapshot.EncodeTravel(l, &v.travelV, h, v.problems)
}

func (v *validator) faculty(r *sis.Row, h uint64, l *pgcopy.Line) error {
	v.problems = v.check.Faculty(r, &v.facultyV, v.problems[:0])
	return snapshot.EncodeFaculty(l, &v.facultyV, h, v.problems)
}

func (v *validator) period(r *sis.Row, h uint64, l *pgcopy.Line) error {
	v.problems = v.check.Period(r, &v.periodV, v.problems[:0])
	return snapshot.EncodePeriod(l, &v.periodV, h, v.problems)
}
