// The snapshot is the worker's copy of the SIS (the roster), kept in its
// own PostgreSQL database; a sync writes a night's changes to it in bulk.
//
// A sync compares the SIS with the snapshot row by row, both read in key
// order, so only new and changed rows are validated and written: every
// table's changed rows go through one COPY into a temporary staging table,
// then one set-based statement merges them. The whole sync is one
// transaction: a sync that fails leaves the previous snapshot as it was.

package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/internal/workerdb"
	"github.com/iec-almaty/sisnotify/jobs/validate"
	"github.com/iec-almaty/sisnotify/store/internal/pgcopy"
)

// Entity names a snapshot table in data problems and counts.
type Entity string

// The snapshot's tables.
const (
	EntityFaculty Entity = "faculty"
	EntityPeriod  Entity = "academic_period"
	EntityStudent Entity = "student"
	EntityTravel  Entity = "travel_request"
)

// crossCodes are problems found across tables or rows (crossChecks), not
// from one row alone: a changed row's merge leaves them to crossChecks.
var crossCodes = []string{validate.CodeUnknownFaculty, validate.CodeOrphan, validate.CodeDuplicateID}

// table describes one snapshot table and its staging twin.
type table struct {
	entity  Entity
	name    string // sisnotify.students
	stage   string // stage_students
	key     string
	columns string // the data columns, in staging order
}

var tables = map[Entity]table{
	EntityFaculty: {EntityFaculty, "sisnotify.faculties", "stage_faculties", "faculty_id",
		"faculty_id, name, dean_name, dean_email, dean_language"},
	EntityPeriod: {EntityPeriod, "sisnotify.academic_periods", "stage_periods", "period_id",
		"period_id, kind, starts_on, ends_on"},
	EntityStudent: {EntityStudent, "sisnotify.students", "stage_students", "student_id",
		"student_id, given_name, family_name, email, phone, preferred_language, citizenship, visa_regime, faculty_id, enrollment_status, passport_number, passport_expires_on, planned_entry_on, invitation_docs_on, entered_on, office_check_in_on, registered_on, registration_expires_on, extension_requested_on, moved_on, address_registered_on, sis_updated_at"},
	EntityTravel: {EntityTravel, "sisnotify.travel_requests", "stage_travel", "request_id",
		"request_id, student_id, kind, submitted_on, departure_on, return_on, dean_decision, reason, exit_visa_ready, departed_on, returned_on, return_check_in_on, cancelled, sis_updated_at"},
}

// lockKey serialises syncs across processes ("sissync" in ASCII).
const lockKey = 0x73697373796e63

// ErrBusy is returned by BeginSync while another sync holds the snapshot.
var ErrBusy = errors.New("another sync is writing the snapshot")

// TableCounts are the counts of one table in one sync.
type TableCounts struct {
	Read     int64 `json:"read"`
	New      int64 `json:"new"`
	Changed  int64 `json:"changed"`
	Removed  int64 `json:"removed"`
	Rejected int64 `json:"rejected"`
}

// SyncWriter is one sync's write to the snapshot: a transaction on a dedicated
// connection, holding the sync lock, plus a second connection that reads
// the snapshot's current hashes.
type SyncWriter struct {
	db     *sqlx.DB
	conn   *txConn        // the write transaction
	read   *pgconn.PgConn // the snapshot's keys and hashes, as committed
	syncID int64
	now    time.Time // the transaction's now()
	counts map[Entity]*TableCounts
	dups   []dupProblem
	// faculties are the faculty ids of the SIS tonight (a handful): the
	// faculties present once the sync commits.
	faculties     map[string]bool
	facultiesDone bool
	// directStudents: the students were loaded directly, their unknown
	// faculties found on the way (Encoder.Student), not by a scan.
	directStudents bool
	// direct: the tables loaded directly (TableWriter.Direct); removed:
	// the keys each table's Close marked removed, which crossChecks
	// looks at with the staged rows.
	direct  map[Entity]bool
	removed map[Entity][]string
	// asOf is the sync's date; fullChecks: crossChecks checked every row.
	asOf       string
	fullChecks bool
	done       bool
	// changesRead: a table was read by its changes (TableChanges) and
	// not again in full; sisBegan is the SIS's clock at the read (SetRead).
	changesRead bool
	sisBegan    time.Time
	hashVersion string
	// present is, by table, the rows present once the sync commits;
	// lastPresent the same count recorded by the last good sync
	// (ChangesSince), which a read of changes starts from.
	present, lastPresent map[Entity]int64
	// Guard, when set, holds a sync whose students changed too much.
	Guard *Guard
	// GuardStats is what the guard measured (students only).
	GuardStats GuardStats
	// CheckEveryRow makes Finish check every row across tables tonight,
	// whatever the last week's syncs did (tests compare the two).
	CheckEveryRow bool
}

type dupProblem struct {
	entity Entity
	id     string
}

// BeginSync starts a sync's write for the as-of date asOf (YYYY-MM-DD) and
// records the sync in sisnotify.syncs inside the same transaction, so a
// rolled-back sync (a dry run) leaves no trace. It fails with ErrBusy when
// another sync is running.
func BeginSync(ctx context.Context, db *sqlx.DB, asOf string) (*SyncWriter, error) {
	conn, err := lockedTx(ctx, db)
	if err != nil {
		return nil, err
	}
	w := &SyncWriter{db: db, conn: conn, counts: map[Entity]*TableCounts{}, faculties: map[string]bool{}, present: map[Entity]int64{},
		direct: map[Entity]bool{}, removed: map[Entity][]string{}, asOf: asOf}
	if err := conn.QueryRowContext(ctx, `INSERT INTO sisnotify.syncs (as_of) VALUES ($1) RETURNING sync_id, now()`, asOf).Scan(&w.syncID, &w.now); err != nil {
		w.Rollback()
		return nil, fmt.Errorf("snapshot: record sync: %w", err)
	}

	for _, t := range tables {
		// Staging tables hold the data columns, the raw row's hash and the
		// row's problems as JSON; they vanish with the transaction.
		q := fmt.Sprintf(`CREATE TEMP TABLE %s ON COMMIT DROP AS SELECT %s, row_hash, NULL::jsonb AS problems FROM %s WITH NO DATA`, t.stage, t.columns, t.name)
		if _, err := conn.ExecContext(ctx, q); err != nil {
			w.Rollback()
			return nil, fmt.Errorf("snapshot: staging %s: %w", t.entity, err)
		}
	}
	// The keys and hashes are read in binary through pgconn, every row
	// into the same buffers: a million rows a night cost no allocation.
	url, err := workerdb.MustURL(db)
	if err == nil {
		w.read, err = pgconn.Connect(ctx, url)
	}
	if err != nil {
		w.Rollback()
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return w, nil
}

// Rollback abandons the sync; the snapshot stays as it was. It is safe to
// call after Commit.
func (w *SyncWriter) Rollback() {
	if w.done {
		return
	}
	w.done = true
	ctx := context.Background()
	if w.read != nil {
		w.read.Close(ctx)
	}
	_, _ = w.conn.ExecContext(ctx, `ROLLBACK`)
	_, _ = w.conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, int64(lockKey))
	w.conn.Close()
}

// Counts returns the counts so far, by table.
func (w *SyncWriter) Counts() map[Entity]TableCounts {
	out := make(map[Entity]TableCounts, len(w.counts))
	for k, v := range w.counts {
		out[k] = *v
	}
	return out
}

// Table starts writing one table. Rows must then be offered with Next in
// strictly increasing key order (byte order), and the table finished with
// Close before the next one starts.
func (w *SyncWriter) Table(ctx context.Context, e Entity) (*TableWriter, error) {
	t := tables[e]
	c := &TableCounts{}
	w.counts[e] = c
	rows := w.read.ExecParams(ctx, fmt.Sprintf(`SELECT %s, row_hash, removed_at IS NOT NULL FROM %s ORDER BY %s`, t.key, t.name, t.key),
		nil, nil, nil, []int16{pgx.BinaryFormatCode})
	tw := &TableWriter{w: w, t: t, counts: c, rows: rows, ctx: ctx, dupsBefore: len(w.dups)}
	tw.advance()
	if err := tw.start(ctx); err != nil {
		tw.closeRows()
		return nil, err
	}
	return tw, nil
}

// TableChanges starts writing one table from a read of its changed rows
// only: the SIS's rows whose updated_at moved since an earlier read, in
// strictly increasing key order, as for Table. Rows not offered stay as
// they are; rows offered unchanged are found unchanged by their hash at
// Close. keys is the number of keys the SIS holds (sis.Snapshot.Keys): a
// read of changes cannot see a row deleted from the SIS, so Close checks
// that the snapshot then holds as many rows as the SIS, and fails with
// ErrIncomplete when it does not, having written nothing; the caller then
// reads the whole table with Table.
func (w *SyncWriter) TableChanges(ctx context.Context, e Entity, keys int64) (*TableWriter, error) {
	c := &TableCounts{}
	w.counts[e] = c
	last, ok := w.lastPresent[e]
	if !ok {
		return nil, fmt.Errorf("snapshot: %s: a read of changes needs the last sync's count of rows (ChangesSince)", e)
	}
	tw := &TableWriter{w: w, t: tables[e], counts: c, ctx: ctx, changes: true, sisKeys: keys, prevPresent: last}
	var err error
	if tw.copy, err = tw.startRows(ctx); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return tw, nil
}

// ErrIncomplete is returned by Close of a TableChanges writer when the
// snapshot would not hold the SIS's rows, one for one.
var ErrIncomplete = errors.New("a read of changes does not account for every row")

// start chooses how the table's rows are written and starts their COPY:
// into the staging table for the merge, or, when the snapshot table is
// empty (the initial load), straight into it. An initial load would merge
// every row into an empty table, so it skips the staging copy, the merge
// and the problems' JSON; the rows still go in through the sync's
// transaction, so a failed sync leaves the table empty as before.
func (tw *TableWriter) start(ctx context.Context) error {
	direct, err := tw.canLoadDirectly(ctx)
	if err != nil {
		return err
	}
	tw.direct = direct
	tw.w.direct[tw.t.entity] = direct
	if direct && tw.t.entity == EntityStudent && tw.w.facultiesDone {
		tw.w.directStudents = true
	}
	if tw.copy, err = tw.startRows(ctx); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// canLoadDirectly reports whether the snapshot table has no row at all
// (none removed either) and data_problems holds no problem of its kind:
// then a direct load ends exactly as the merge would, and the problems it
// writes cannot collide with older ones.
func (tw *TableWriter) canLoadDirectly(ctx context.Context) (bool, error) {
	if tw.has || tw.err != nil {
		return false, nil
	}
	var stale bool
	if err := tw.w.conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sisnotify.data_problems WHERE entity = $1)`,
		string(tw.t.entity)).Scan(&stale); err != nil {
		return false, fmt.Errorf("snapshot: %s problems: %w", tw.t.entity, err)
	}
	return !stale, nil
}

// startRows starts the COPY of the table's rows, as the encoder writes
// them (directColumns or the staging columns).
func (tw *TableWriter) startRows(ctx context.Context) (*pgcopy.Copy, error) {
	if tw.direct {
		return pgcopy.Start(ctx, tw.w.conn.Conn, tw.t.name, directColumns(tw.t))
	}
	return pgcopy.Start(ctx, tw.w.conn.Conn, tw.t.stage, tw.t.columns+", row_hash, problems")
}

// directColumns are the columns a direct load writes: what the merge's
// INSERT sets; first_seen_at and changed_at take their default, now().
func directColumns(t table) string {
	cols := t.columns + ", row_hash"
	switch t.entity {
	case EntityStudent:
		cols += ", last_sync_id, passport_changed_at, entry_changed_at, registration_changed_at, move_changed_at"
	case EntityTravel:
		cols += ", last_sync_id"
	}
	return cols
}

// problemColumns are the columns of data_problems a direct load writes.
const problemColumns = "entity, row_id, field, code, severity, message, last_sync_id"

// maxPendingProblems bounds the problems of a direct load held until they
// can be written: the connection carries one COPY at a time, so the rows'
// COPY pauses for theirs whenever this much is waiting.
const maxPendingProblems = 256 << 10

// TableWriter merges one SIS table, in key order, against the snapshot.
type TableWriter struct {
	w      *SyncWriter
	t      table
	counts *TableCounts
	rows   *pgconn.ResultReader
	copy   *pgcopy.Copy
	cur    struct {
		id      []byte // valid until the next advance
		hash    int64
		removed bool
	}
	has     bool
	err     error
	removed []string
	lastID  []byte
	// direct: the table was empty and its rows go straight into it; their
	// problems wait in pending (encoded rows) for a pause of the rows' COPY.
	direct  bool
	pending []byte
	started bool
	// prevPresent counts the table's rows present before the sync (for
	// the guard), as the keys and hashes are read: complete once they
	// all are (Close).
	prevPresent int64
	// ctx is the one the table was started with (Table): a COPY lives
	// from its start to its Finish, across calls of Write that may come
	// with shorter-lived contexts.
	ctx context.Context
	// changes: only changed rows are offered (TableChanges); the SIS
	// holds sisKeys keys.
	changes bool
	sisKeys int64
	// revived counts rows the snapshot had marked removed that the SIS
	// lists again.
	revived int64
	// dupsBefore is how many duplicate keys the sync had found before
	// this table (Discard forgets this table's).
	dupsBefore int
}

func (tw *TableWriter) advance() {
	tw.has = false
	if tw.err != nil || tw.rows == nil {
		return
	}
	if !tw.rows.NextRow() {
		_, tw.err = tw.rows.Close()
		tw.rows = nil
		return
	}
	v := tw.rows.Values()
	if len(v) != 3 || len(v[1]) != 8 || len(v[2]) != 1 {
		tw.err = errors.New("unexpected row of keys and hashes")
		return
	}
	tw.cur.id, tw.cur.hash, tw.cur.removed = v[0], int64(binary.BigEndian.Uint64(v[1])), v[2][0] == 1
	if !tw.cur.removed {
		tw.prevPresent++
	}
	tw.has = true
}

// closeRows ends the read of keys and hashes, if it has not ended.
func (tw *TableWriter) closeRows() {
	if tw.rows != nil {
		_, _ = tw.rows.Close()
		tw.rows = nil
	}
}

// ErrOrder is returned by Next when keys do not increase.
var ErrOrder = errors.New("keys out of order")

// Next offers the SIS row with key id and raw hash. It reports whether the
// row is new or changed (the caller then validates it and calls Write), and
// records as removed every snapshot row whose key it passed over. A key equal
// to the previous one is a duplicate: it is counted as rejected, reported as
// a data problem, and Next returns false. id is only read during the call.
func (tw *TableWriter) Next(id []byte, hash uint64) (changed bool, err error) {
	tw.counts.Read++
	if tw.started {
		switch c := bytes.Compare(id, tw.lastID); {
		case c == 0:
			tw.counts.Rejected++
			tw.w.dups = append(tw.w.dups, dupProblem{tw.t.entity, string(id)})
			return false, nil
		case c < 0:
			return false, fmt.Errorf("%s keys: %w", tw.t.entity, ErrOrder)
		}
	}
	// lastID keeps its memory: no allocation per row.
	tw.started, tw.lastID = true, append(tw.lastID[:0], id...)
	if tw.t.entity == EntityFaculty {
		tw.w.faculties[string(id)] = true
	}
	for tw.has && bytes.Compare(tw.cur.id, id) < 0 {
		if !tw.cur.removed {
			tw.removed = append(tw.removed, string(tw.cur.id))
		}
		tw.advance()
	}
	if tw.err != nil {
		return false, fmt.Errorf("snapshot: read %s hashes: %w", tw.t.entity, tw.err)
	}
	if tw.has && bytes.Equal(tw.cur.id, id) {
		same := tw.cur.hash == int64(hash) && !tw.cur.removed
		if tw.cur.removed {
			tw.revived++
		}
		tw.advance()
		if same {
			return false, nil
		}
		tw.counts.Changed++
		return true, nil
	}
	tw.counts.New++
	return true, nil
}

// Discard abandons a table whose rows were offered (Next) but none
// written: nothing of it reaches the snapshot, and the table may be
// started again with Table. A direct load cannot be discarded.
func (tw *TableWriter) Discard() error {
	tw.closeRows()
	if tw.direct || tw.copy == nil {
		return fmt.Errorf("snapshot: %s: only a staged table with nothing written can be discarded", tw.t.entity)
	}
	err := tw.copy.Finish()
	tw.copy = nil
	if err == nil {
		_, err = tw.w.conn.ExecContext(tw.ctx, "TRUNCATE "+tw.t.stage)
	}
	if err != nil {
		return fmt.Errorf("snapshot: discard %s: %w", tw.t.entity, err)
	}
	tw.w.dups = tw.w.dups[:tw.dupsBefore]
	return nil
}

// Reject counts a row that could not be kept at all (no key).
func (tw *TableWriter) Reject() { tw.counts.Read++; tw.counts.Rejected++ }

// Direct reports whether the table is loaded directly (it was empty)
// rather than staged and merged.
func (tw *TableWriter) Direct() bool { return tw.direct }

// Write writes one row encoded by the table's Encoder. It must not be
// called from two goroutines at once.
func (tw *TableWriter) Write(ctx context.Context, e *Encoded) error {
	if err := tw.copy.Row(e.Line.B); err != nil {
		return fmt.Errorf("snapshot: write %s: %w", tw.t.entity, err)
	}
	if len(e.Problems) == 0 {
		return nil
	}
	tw.pending = append(tw.pending, e.Problems...)
	if len(tw.pending) < maxPendingProblems {
		return nil
	}
	return tw.writeProblems(ctx, true)
}

// writeProblems ends the rows' COPY, copies the pending problems into
// data_problems and, when resume is set, starts the rows' COPY again.
func (tw *TableWriter) writeProblems(ctx context.Context, resume bool) error {
	if err := tw.copy.Finish(); err != nil {
		return fmt.Errorf("snapshot: write %s: %w", tw.t.entity, err)
	}
	tw.copy = nil
	if len(tw.pending) > 0 {
		pc, err := pgcopy.Start(tw.ctx, tw.w.conn.Conn, "sisnotify.data_problems", problemColumns)
		if err != nil {
			return fmt.Errorf("snapshot: %s problems: %w", tw.t.entity, err)
		}
		err = pc.Rows(tw.pending)
		if ferr := pc.Finish(); err == nil {
			err = ferr
		}
		if err != nil {
			return fmt.Errorf("snapshot: %s problems: %w", tw.t.entity, err)
		}
		tw.pending = tw.pending[:0]
	}
	if !resume {
		return nil
	}
	cp, err := tw.startRows(tw.ctx)
	if err != nil {
		return fmt.Errorf("snapshot: write %s: %w", tw.t.entity, err)
	}
	tw.copy = cp
	return nil
}

// Close ends the table: every snapshot row not offered is removed.
func (tw *TableWriter) Close(ctx context.Context) error {
	for tw.has {
		if !tw.cur.removed {
			tw.removed = append(tw.removed, string(tw.cur.id))
		}
		tw.advance()
	}
	rerr := tw.err
	tw.closeRows()
	if tw.copy == nil {
		return fmt.Errorf("snapshot: %s closed twice or after a failed write", tw.t.entity)
	}
	if tw.direct {
		if err := tw.writeProblems(ctx, false); err != nil {
			return err
		}
	} else if err := tw.copy.Finish(); err != nil {
		return fmt.Errorf("snapshot: stage %s: %w", tw.t.entity, err)
	}
	tw.copy = nil
	if rerr != nil {
		return fmt.Errorf("snapshot: read %s hashes: %w", tw.t.entity, rerr)
	}
	tw.counts.Removed = int64(len(tw.removed))
	tw.w.removed[tw.t.entity] = tw.removed
	if tw.changes {
		if err := tw.settleChanges(ctx); err != nil {
			return err
		}
	}
	tw.w.present[tw.t.entity] = tw.prevPresent + tw.counts.New + tw.revived - tw.counts.Removed
	if tw.t.entity == EntityFaculty {
		tw.w.facultiesDone = true
	}
	if err := tw.checkGuard(ctx); err != nil {
		return err
	}
	if tw.direct {
		// Nothing to remove from an empty table, nothing to merge.
		return nil
	}
	if len(tw.removed) > 0 {
		t := tw.t
		// Only the students and travel requests keep the sync that last
		// changed them (a faculty or period has no last_sync_id).
		q, args := fmt.Sprintf(`UPDATE %s SET removed_at = now() WHERE %s = ANY($1)`, t.name, t.key), []any{pq.Array(tw.removed)}
		if t.entity == EntityStudent || t.entity == EntityTravel {
			q, args = fmt.Sprintf(`UPDATE %s SET removed_at = now(), last_sync_id = $2 WHERE %s = ANY($1)`, t.name, t.key), append(args, tw.w.syncID)
		}
		if _, err := tw.w.conn.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("snapshot: remove %s: %w", t.entity, err)
		}
		if _, err := tw.w.conn.ExecContext(ctx, `DELETE FROM sisnotify.data_problems WHERE entity = $1 AND row_id = ANY($2)`, string(t.entity), pq.Array(tw.removed)); err != nil {
			return fmt.Errorf("snapshot: remove %s problems: %w", t.entity, err)
		}
	}
	return tw.merge(ctx)
}

// settleChanges compares the staged rows of a read of changes with the
// snapshot: those whose hash is the snapshot's are unchanged and leave the
// staging table; the rest are new or changed. Then the snapshot must hold
// the SIS's keys one for one, else a row was deleted from the SIS (or
// changed without its updated_at moving, and so left a view), and the
// table is left untouched: ErrIncomplete.
func (tw *TableWriter) settleChanges(ctx context.Context) error {
	t := tw.t
	var unchanged, fresh, revived int64
	if err := tw.w.conn.QueryRowContext(ctx, fmt.Sprintf(`
		SELECT count(*) FILTER (WHERE t.removed_at IS NULL AND t.row_hash = s.row_hash),
		       count(*) FILTER (WHERE t.%[3]s IS NULL),
		       count(*) FILTER (WHERE t.removed_at IS NOT NULL)
		FROM %[2]s s LEFT JOIN %[1]s t ON t.%[3]s = s.%[3]s`, t.name, t.stage, t.key)).Scan(&unchanged, &fresh, &revived); err != nil {
		return fmt.Errorf("snapshot: %s changes: %w", t.entity, err)
	}
	// The rows present are the last good sync's count: only a sync
	// writes the snapshot's tables.
	if after := tw.prevPresent + fresh + revived; after != tw.sisKeys {
		if _, err := tw.w.conn.ExecContext(ctx, `TRUNCATE `+t.stage); err != nil {
			return fmt.Errorf("snapshot: %s changes: %w", t.entity, err)
		}
		dups := tw.w.dups[:0]
		for _, d := range tw.w.dups {
			if d.entity != t.entity {
				dups = append(dups, d)
			}
		}
		tw.w.dups = dups
		return fmt.Errorf("%s: %w: the SIS holds %d keys, the snapshot would hold %d", t.entity, ErrIncomplete, tw.sisKeys, after)
	}
	if unchanged > 0 {
		if _, err := tw.w.conn.ExecContext(ctx, fmt.Sprintf(`DELETE FROM %[2]s s USING %[1]s t
			WHERE t.%[3]s = s.%[3]s AND t.row_hash = s.row_hash AND t.removed_at IS NULL`, t.name, t.stage, t.key)); err != nil {
			return fmt.Errorf("snapshot: %s changes: %w", t.entity, err)
		}
	}
	tw.w.changesRead = true
	// Next counted every row offered as new.
	offered := tw.counts.New
	tw.counts.New, tw.counts.Changed = fresh, offered-unchanged-fresh
	tw.revived = revived
	return nil
}

// merge moves the staged rows into the snapshot table, keeping when each
// deadline-relevant fact last changed, and replaces their problems.
func (tw *TableWriter) merge(ctx context.Context) error {
	t := tw.t
	cols := strings.Split(t.columns, ", ")
	sets := make([]string, 0, len(cols)+8)
	for _, c := range cols[1:] {
		sets = append(sets, c+" = EXCLUDED."+c)
	}
	sets = append(sets, "row_hash = EXCLUDED.row_hash", "changed_at = now()", "removed_at = NULL")
	insCols, selCols := t.columns+", row_hash", t.columns+", row_hash"
	switch t.entity {
	case EntityStudent, EntityTravel:
		insCols += ", last_sync_id"
		selCols += ", $1::bigint"
		sets = append(sets, "last_sync_id = EXCLUDED.last_sync_id")
	}
	if t.entity == EntityStudent {
		facts := []struct{ col, fields string }{
			{"passport_changed_at", "passport_expires_on"},
			{"entry_changed_at", "entered_on"},
			{"registration_changed_at", "registered_on, registration_expires_on"},
			{"move_changed_at", "moved_on"},
		}
		for _, f := range facts {
			fs := strings.Split(f.fields, ", ")
			old, nu, set := make([]string, len(fs)), make([]string, len(fs)), make([]string, len(fs))
			for i, x := range fs {
				old[i], nu[i], set[i] = "t."+x, "EXCLUDED."+x, x+" IS NOT NULL"
			}
			insCols += ", " + f.col
			selCols += fmt.Sprintf(", CASE WHEN %s THEN now() END", strings.Join(set, " OR "))
			sets = append(sets, fmt.Sprintf("%s = CASE WHEN (%s) IS DISTINCT FROM (%s) THEN now() ELSE t.%s END",
				f.col, strings.Join(old, ", "), strings.Join(nu, ", "), f.col))
		}
	}
	args := []any{}
	if t.entity == EntityStudent || t.entity == EntityTravel {
		args = append(args, tw.w.syncID)
	}
	q := fmt.Sprintf(`INSERT INTO %s AS t (%s) SELECT %s FROM %s ON CONFLICT (%s) DO UPDATE SET %s`,
		t.name, insCols, strings.ReplaceAll(selCols, "sis_updated_at", "sis_updated_at::timestamptz"), t.stage, t.key, strings.Join(sets, ", "))
	if _, err := tw.w.conn.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("snapshot: merge %s: %w", t.entity, err)
	}
	// The staged rows' own problems: keep first_seen_at of those that stay,
	// drop those that are gone.
	if _, err := tw.w.conn.ExecContext(ctx, fmt.Sprintf(`
		INSERT INTO sisnotify.data_problems AS p (entity, row_id, field, code, severity, message, last_sync_id)
		SELECT $1, s.%s, e.f, e.c, e.s, e.m, $2
		FROM %s s, jsonb_to_recordset(s.problems) AS e(f text, c text, s text, m text)
		WHERE s.problems IS NOT NULL
		ON CONFLICT (entity, row_id, field, code) DO UPDATE
		SET severity = EXCLUDED.severity, message = EXCLUDED.message, last_sync_id = EXCLUDED.last_sync_id`, t.key, t.stage),
		string(t.entity), tw.w.syncID); err != nil {
		return fmt.Errorf("snapshot: %s problems: %w", t.entity, err)
	}
	if _, err := tw.w.conn.ExecContext(ctx, fmt.Sprintf(`
		DELETE FROM sisnotify.data_problems p USING %s s
		WHERE p.entity = $1 AND p.row_id = s.%s AND p.last_sync_id <> $2 AND p.code <> ALL($3)`, t.stage, t.key),
		string(t.entity), tw.w.syncID, pq.Array(crossCodes)); err != nil {
		return fmt.Errorf("snapshot: %s problems: %w", t.entity, err)
	}
	return nil
}

// SyncID is the id of this sync in sisnotify.syncs.
func (w *SyncWriter) SyncID() int64 { return w.syncID }

// Conn is the connection of the sync's transaction: after Finish, a caller
// may read the new snapshot and write more through it before Commit (a dry
// run evaluates in it and rolls everything back).
func (w *SyncWriter) Conn() *sql.Conn { return w.conn.Conn }

// Finish recomputes the problems that span rows or tables (unknown
// faculties, travel of unknown students, duplicate ids), without
// committing. It returns the number of current problems by severity.
func (w *SyncWriter) Finish(ctx context.Context) (errs, warnings int64, err error) {
	c := w.conn
	if err := w.crossChecks(ctx); err != nil {
		return 0, 0, err
	}
	if err := c.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE severity = 'error'), count(*) FILTER (WHERE severity = 'warning') FROM sisnotify.data_problems`).Scan(&errs, &warnings); err != nil {
		return 0, 0, fmt.Errorf("snapshot: count problems: %w", err)
	}
	return errs, warnings, nil
}

// crossCheckEvery is how many days the cross-table checks may look at
// the changed rows only before they check every row again: a safety net,
// like the weekly full read and evaluation.
const crossCheckEvery = 7

// crossChecks finds the problems that span rows or tables: students of
// unknown faculties, travel requests of unknown students, and duplicate
// ids. When no row of any table changed and the same number of
// duplicate ids was seen, they cannot have changed: an unchanged night
// skips them.
//
// Otherwise a problem across tables can only appear or go where a row
// changed: a student's faculty where the student changed (or any
// faculty did), a travel request's student where the request or that
// student changed. So the checks look at those rows only (the staged
// rows and the removed keys, found through the snapshot's keys and the
// index of travel requests by student), and check every row when a table
// was loaded directly, when the faculties changed, and when no sync of
// the last week did (full_checks in sisnotify.syncs). Each problem found
// keeps its first_seen_at; one of a checked row that no longer holds
// goes. Duplicate ids are those of tonight's read, as before.
func (w *SyncWriter) crossChecks(ctx context.Context) error {
	c := w.conn
	changed := false
	for _, n := range w.counts {
		if n.New+n.Changed+n.Removed > 0 {
			changed = true
		}
	}
	if !changed {
		var known int
		if err := c.QueryRowContext(ctx, `SELECT count(*) FROM sisnotify.data_problems WHERE code = 'duplicate_id'`).Scan(&known); err != nil {
			return fmt.Errorf("snapshot: cross-table checks: %w", err)
		}
		dups := map[dupProblem]bool{}
		for _, d := range w.dups {
			dups[d] = true
		}
		if known == len(dups) {
			return nil
		}
	}
	var recent bool
	if err := c.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sisnotify.syncs WHERE status = 'ok' AND full_checks AND as_of > $1::date - $2::int)`,
		w.asOf, crossCheckEvery).Scan(&recent); err != nil {
		return fmt.Errorf("snapshot: cross-table checks: %w", err)
	}
	w.fullChecks = !recent || w.CheckEveryRow
	fac := w.counts[EntityFaculty]
	facultiesChanged := fac != nil && fac.New+fac.Changed+fac.Removed > 0
	// Codes whose every problem tonight's checks stamped: the others
	// are left as they are.
	whole := []string{validate.CodeDuplicateID}
	students := `(SELECT student_id FROM stage_students UNION SELECT unnest($2::text[]) COLLATE "C")`
	travels := `(SELECT request_id FROM stage_travel
		UNION SELECT t.request_id FROM sisnotify.travel_requests t JOIN ` + students + ` x ON t.student_id = x.student_id WHERE t.removed_at IS NULL
		UNION SELECT unnest($3::text[]) COLLATE "C")`
	args := []any{w.syncID, pq.Array(w.removed[EntityStudent]), pq.Array(w.removed[EntityTravel])}
	var stmts, stale []string
	switch {
	case w.directStudents:
		// A direct load found them on the way, every student being new.
		whole = append(whole, validate.CodeUnknownFaculty)
	case w.fullChecks || facultiesChanged || w.direct[EntityStudent]:
		whole = append(whole, validate.CodeUnknownFaculty)
		stmts = append(stmts, unknownFaculty(`sisnotify.students s`))
	default:
		stmts = append(stmts, unknownFaculty(students+` x JOIN sisnotify.students s ON s.student_id = x.student_id`))
		stale = append(stale, `DELETE FROM sisnotify.data_problems p USING `+students+` x
			WHERE p.entity = 'student' AND p.code = 'unknown_faculty' AND p.row_id = x.student_id AND p.last_sync_id <> $1`)
	}
	if w.fullChecks || w.direct[EntityStudent] || w.direct[EntityTravel] {
		whole = append(whole, validate.CodeOrphan)
		stmts = append(stmts, everyTravelRequest)
	} else {
		stmts = append(stmts, unknownStudent(travels+` x JOIN sisnotify.travel_requests t ON t.request_id = x.request_id`))
		stale = append(stale, `DELETE FROM sisnotify.data_problems p USING `+travels+` x
			WHERE p.entity = 'travel_request' AND p.code = 'unknown_student' AND p.row_id = x.request_id AND p.last_sync_id <> $1`)
	}
	if len(stale) > 0 {
		// The staging tables are temporary: without statistics the
		// planner takes a few staged rows for a thousand and scans the
		// travel requests whole (0.13 s at a million students, against
		// 0.4 ms).
		for _, st := range []string{"stage_students", "stage_travel"} {
			if _, err := c.ExecContext(ctx, `ANALYZE `+st); err != nil {
				return fmt.Errorf("snapshot: cross-table checks: %w", err)
			}
		}
	}
	for _, q := range append(stmts, stale...) {
		if err := execCheck(ctx, c, q, args[:argsOf(q)]...); err != nil {
			return fmt.Errorf("snapshot: cross-table checks: %w", err)
		}
	}
	if len(w.dups) > 0 {
		ents, ids := make([]string, len(w.dups)), make([]string, len(w.dups))
		for i, d := range w.dups {
			ents[i], ids[i] = string(d.entity), d.id
		}
		if _, err := c.ExecContext(ctx, `
			INSERT INTO sisnotify.data_problems AS p (entity, row_id, field, code, severity, message, last_sync_id)
			SELECT DISTINCT e, id, 'id', 'duplicate_id', 'error', 'the same id on several rows; the first row is kept, the others ignored', $1::bigint
			FROM unnest($2::text[], $3::text[]) AS u(e, id)
			ON CONFLICT (entity, row_id, field, code) DO UPDATE SET last_sync_id = EXCLUDED.last_sync_id`,
			w.syncID, pq.Array(ents), pq.Array(ids)); err != nil {
			return fmt.Errorf("snapshot: duplicate ids: %w", err)
		}
	}
	if _, err := c.ExecContext(ctx, `DELETE FROM sisnotify.data_problems WHERE code = ANY($1) AND last_sync_id <> $2`, pq.Array(whole), w.syncID); err != nil {
		return fmt.Errorf("snapshot: cross-table checks: %w", err)
	}
	return nil
}

// everyTravelRequest is the check of every travel request for its
// student (unknownStudent of the whole table).
var everyTravelRequest = unknownStudent(`sisnotify.travel_requests t`)

// execCheck runs one statement of crossChecks: the check of every travel
// request under mergePlan, the others as they are.
func execCheck(ctx context.Context, c *txConn, q string, args ...any) error {
	exec := func() error {
		_, err := c.ExecContext(ctx, q, args...)
		return err
	}
	if q == everyTravelRequest {
		return mergePlan(ctx, c, exec)
	}
	return exec()
}

// mergePlan runs f with nested loops, hash joins and sorts off, so that
// the check of every travel request is a merge of the two key-ordered
// indexes (the travel requests' by student, the students' primary key).
// Without statistics on the tables an initial load has just filled, the
// planner takes a nested loop that probes the students' index once per
// travel request instead (at a million students, 372,946 probes: 1.0-1.1
// s against 0.38-0.53 s; a hash join 0.83 s), and with statistics it may
// pick the hash join. The settings are reset after f, for the rest of the
// sync's transaction (and go with the transaction if it fails).
func mergePlan(ctx context.Context, c *txConn, f func() error) error {
	plan := []string{"enable_nestloop", "enable_hashjoin", "enable_sort"}
	for _, p := range plan {
		if _, err := c.ExecContext(ctx, `SET LOCAL `+p+` = off`); err != nil {
			return err
		}
	}
	if err := f(); err != nil {
		return err
	}
	for _, p := range plan {
		if _, err := c.ExecContext(ctx, `RESET `+p); err != nil {
			return err
		}
	}
	return nil
}

// argsOf is how many of crossChecks' parameters ($1 the sync, $2 the
// removed students, $3 the removed travel requests) q uses: PostgreSQL
// refuses a parameter whose type it cannot infer.
func argsOf(q string) int {
	for n := 3; n > 1; n-- {
		if strings.Contains(q, "$"+strconv.Itoa(n)) {
			return n
		}
	}
	return 1
}

// unknownFaculty records, stamped with the sync ($1), the students of
// from (rows s) whose faculty the snapshot does not hold.
func unknownFaculty(from string) string {
	return `INSERT INTO sisnotify.data_problems AS p (entity, row_id, field, code, severity, message, last_sync_id)
		 SELECT 'student', s.student_id, 'faculty_id', 'unknown_faculty', 'warning', '` + unknownFacultyMessage + `', $1
		 FROM ` + from + `
		 WHERE s.removed_at IS NULL AND s.faculty_id IS NOT NULL
		   AND NOT EXISTS (SELECT 1 FROM sisnotify.faculties f WHERE f.faculty_id = s.faculty_id AND f.removed_at IS NULL)
		 ON CONFLICT (entity, row_id, field, code) DO UPDATE SET last_sync_id = EXCLUDED.last_sync_id`
}

// unknownStudent records, stamped with the sync ($1), the travel
// requests of from (rows t) whose student the snapshot does not hold.
func unknownStudent(from string) string {
	return `INSERT INTO sisnotify.data_problems AS p (entity, row_id, field, code, severity, message, last_sync_id)
		 SELECT 'travel_request', t.request_id, 'student_id', 'unknown_student', 'error', 'travel request of a student the SIS does not list; ignored', $1
		 FROM ` + from + `
		 WHERE t.removed_at IS NULL
		   AND NOT EXISTS (SELECT 1 FROM sisnotify.students s WHERE s.student_id = t.student_id AND s.removed_at IS NULL)
		 ON CONFLICT (entity, row_id, field, code) DO UPDATE SET last_sync_id = EXCLUDED.last_sync_id`
}

// FullChecks reports whether Finish checked every row across tables
// (crossChecks), not only the changed ones.
func (w *SyncWriter) FullChecks() bool { return w.fullChecks }

// SetRead records the SIS's clock when its snapshot was read (a later
// read of changes reads from there, less a margin) and the version of
// the row hashes the sync compared (a read of changes needs a full read
// with the same version).
func (w *SyncWriter) SetRead(began time.Time, hashVersion string) {
	w.sisBegan, w.hashVersion = began, hashVersion
}

// ChangesSince returns the SIS clock of the last good sync's read, when
// a read of changes may follow it: that sync recorded its read and the
// rows it left in the tables read by changes, and some good sync read the
// SIS in full with row hashes of hashVersion within the `within` days up
// to asOf (YYYY-MM-DD). ok is false when the sync must read in full.
func (w *SyncWriter) ChangesSince(ctx context.Context, asOf string, within int, hashVersion string) (since time.Time, ok bool, err error) {
	var last sql.NullTime
	var present []byte
	var full bool
	if err := w.conn.QueryRowContext(ctx, `
		WITH last AS (SELECT sis_read_at, present FROM sisnotify.syncs WHERE status = 'ok' ORDER BY sync_id DESC LIMIT 1)
		SELECT (SELECT sis_read_at FROM last), (SELECT present FROM last),
		       EXISTS (SELECT 1 FROM sisnotify.syncs WHERE status = 'ok' AND full_read AND hash_version = $3
		                 AND as_of > $1::date - $2::int AND as_of <= $1::date)`, asOf, within, hashVersion).Scan(&last, &present, &full); err != nil {
		return time.Time{}, false, fmt.Errorf("snapshot: last read: %w", err)
	}
	if !last.Valid || !full || present == nil {
		return time.Time{}, false, nil
	}
	counts := map[Entity]int64{}
	if err := json.Unmarshal(present, &counts); err != nil {
		return time.Time{}, false, fmt.Errorf("snapshot: last read: %w", err)
	}
	for _, e := range []Entity{EntityStudent, EntityTravel} {
		if _, ok := counts[e]; !ok {
			return time.Time{}, false, nil
		}
	}
	w.lastPresent = counts
	return last.Time, true, nil
}

// Commit marks the sync ok with its counts (JSON) and commits everything
// written through Conn.
func (w *SyncWriter) Commit(ctx context.Context, counts []byte) error {
	defer w.Rollback()
	c := w.conn
	var began sql.NullTime
	var version, present sql.NullString
	if !w.sisBegan.IsZero() {
		began = sql.NullTime{Time: w.sisBegan, Valid: true}
		version = sql.NullString{String: w.hashVersion, Valid: true}
		b, err := json.Marshal(w.present)
		if err != nil {
			return fmt.Errorf("snapshot: record sync: %w", err)
		}
		present = sql.NullString{String: string(b), Valid: true}
	}
	if _, err := c.ExecContext(ctx, `UPDATE sisnotify.syncs SET finished_at = clock_timestamp(), status = 'ok', counts = $2,
		sis_read_at = $3, full_read = $4, hash_version = $5, present = $6, full_checks = $7 WHERE sync_id = $1`, w.syncID, string(counts), began, !w.changesRead, version, present, w.fullChecks); err != nil {
		return fmt.Errorf("snapshot: record sync: %w", err)
	}
	if _, err := c.ExecContext(ctx, `COMMIT`); err != nil {
		return fmt.Errorf("snapshot: commit: %w", err)
	}
	w.done = true
	w.read.Close(context.Background())
	_, _ = c.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(lockKey))
	c.Close()
	return nil
}

// RecordSyncFailure logs a sync that failed (and was rolled back) in
// sisnotify.syncs, so operators see it.
func RecordSyncFailure(ctx context.Context, db *sqlx.DB, asOf string, cause error) error {
	_, err := db.ExecContext(ctx, `INSERT INTO sisnotify.syncs (as_of, finished_at, status, error) VALUES ($1, now(), 'failed', $2)`, asOf, cause.Error())
	return err
}
