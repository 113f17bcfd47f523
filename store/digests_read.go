package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
)

// DigestRead is a read-only transaction in one snapshot (repeatable read)
// over what a night's digests show: the listed obligations with what was
// sent for them, the deans, the obligations closed as moot, and the
// office's failed notices and data problems. It is a transaction with
// methods rather than one method that returns everything because the
// reads depend on one another in ways that are the digest's decisions
// (which deans, the moot window of each office address, counts only for a
// cut list), and because a read of another area, jobs.PendingSummary,
// joins the same snapshot through Queryer. Not safe for concurrent use;
// Close it.
//
// Its errors are the driver's: the caller names what it was reading.
type DigestRead struct {
	tx *sqlx.Tx
}

// BeginDigestRead begins the read-only snapshot of a night's digests.
func (s *Store) BeginDigestRead(ctx context.Context) (*DigestRead, error) {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	return &DigestRead{tx: tx}, nil
}

// Close ends the transaction (it wrote nothing).
func (r *DigestRead) Close() { _ = r.tx.Rollback() }

// Queryer is the transaction, for reads of other areas in the same
// snapshot (jobs.PendingSummary).
func (r *DigestRead) Queryer() sqlx.QueryerContext { return r.tx }

// DigestItem is an obligation as a digest lists it: an open one (Items)
// or one closed as moot (Moot). Dates are day numbers (date.Date).
type DigestItem struct {
	ID        int64  `db:"obligation_id"`
	Rule      string `db:"rule"`
	StudentID string `db:"student_id"`
	SubjectID string `db:"subject_id"`
	Due       int32  `db:"due_on"`
	Level     int    `db:"level"`
	Actions   int    `db:"actions"`
	FoundLate int    `db:"found_late"`
	Name      string `db:"name"`
	Faculty   string `db:"faculty"`
	// DeanOf is the faculty whose dean's digest lists it; "" for none.
	DeanOf string `db:"dean_faculty"`
	// Closed as moot or by the office: the day it closed and why (the
	// office digest).
	ClosedOn int32 `db:"closed_on"`
	// SnoozedUntil: the office snoozed its student notices until this day
	// (0: never); the digest marks it while the day is ahead.
	SnoozedUntil int32  `db:"snoozed_until"`
	Reason       string `db:"close_reason"`
}

// The obligations the digests list: open, and the reached step has office
// or dean digest, in its actions or in found_late. These are the dry run's
// predicates (cmd/sisnotify, plannedNotices): the office digest lists
// (actions | found_late) & OfficeDigest; a dean's digest lists
// (actions | found_late) & DeanDigest of the students of a faculty that
// the SIS still lists and that has a dean email.
var digestItemsQuery = `
	SELECT o.obligation_id, o.rule, o.student_id, o.subject_id, ` + dayNum("o.due_on") + ` AS due_on, o.level, o.actions, o.found_late,
	       btrim(coalesce(s.given_name, '') || ' ' || coalesce(s.family_name, '')) AS name,
	       coalesce(fa.name, s.faculty_id, '') AS faculty,
	       CASE WHEN (o.actions | o.found_late) & $2 <> 0 THEN coalesce(f.faculty_id, '') ELSE '' END AS dean_faculty,
	       ` + dayNum("o.snoozed_until") + ` AS snoozed_until
	FROM sisnotify.obligations o
	LEFT JOIN sisnotify.students s ON s.student_id = o.student_id
	LEFT JOIN sisnotify.faculties fa ON fa.faculty_id = s.faculty_id
	LEFT JOIN sisnotify.faculties f ON f.faculty_id = s.faculty_id AND f.removed_at IS NULL AND f.dean_email IS NOT NULL
	WHERE o.closed_at IS NULL AND (o.actions | o.found_late) & $1 <> 0
	ORDER BY o.obligation_id`

// digestMootQuery: the obligations closed as moot on a night in ($1, $2].
var digestMootQuery = `
	SELECT o.obligation_id, o.rule, o.student_id, o.subject_id, ` + dayNum("o.due_on") + ` AS due_on, o.level, o.actions, o.found_late,
	       btrim(coalesce(s.given_name, '') || ' ' || coalesce(s.family_name, '')) AS name,
	       coalesce(fa.name, s.faculty_id, '') AS faculty, '' AS dean_faculty,
	       ` + dayNum("o.closed_on") + ` AS closed_on, o.close_reason
	FROM sisnotify.obligations o
	LEFT JOIN sisnotify.students s ON s.student_id = o.student_id
	LEFT JOIN sisnotify.faculties fa ON fa.faculty_id = s.faculty_id
	WHERE o.close_reason IN ('` + rules.MootDeparturePassed + `', '` + rules.MootEntryPassed + `')
	  AND o.closed_on > $1::date AND o.closed_on <= $2::date
	ORDER BY o.obligation_id`

// digestOfficeClosedQuery: the obligations the office closed in the
// console on a day in ($1, $3] or at a time after $2, with the reason of
// the close as the audit log has it.
var digestOfficeClosedQuery = `
	SELECT o.obligation_id, o.rule, o.student_id, o.subject_id, ` + dayNum("o.due_on") + ` AS due_on, o.level, o.actions, o.found_late,
	       btrim(coalesce(s.given_name, '') || ' ' || coalesce(s.family_name, '')) AS name,
	       coalesce(fa.name, s.faculty_id, '') AS faculty, '' AS dean_faculty,
	       ` + dayNum("o.closed_on") + ` AS closed_on, o.close_reason, o.closed_at, coalesce(o.closed_by, '') AS closed_by,
	       coalesce((SELECT a.reason FROM sisnotify.audit_log a
	                 WHERE a.obligation_id = o.obligation_id AND a.action = '` + AuditClose + `'
	                 ORDER BY a.at DESC, a.audit_id DESC LIMIT 1), '') AS note
	FROM sisnotify.obligations o
	LEFT JOIN sisnotify.students s ON s.student_id = o.student_id
	LEFT JOIN sisnotify.faculties fa ON fa.faculty_id = s.faculty_id
	WHERE o.close_reason = '` + CloseOffice + `'
	  AND (o.closed_on > $1::date OR o.closed_at > coalesce($2::timestamptz, 'infinity')) AND o.closed_on <= $3::date
	ORDER BY o.obligation_id`

// DigestOfficeClosure is an obligation the office closed in the console:
// when, by whom, and why.
type DigestOfficeClosure struct {
	DigestItem
	ClosedAt time.Time `db:"closed_at"`
	ClosedBy string    `db:"closed_by"`
	Note     string    `db:"note"`
}

// OfficeClosed reads the obligations the office closed on a day after
// afterDay or at a time after afterAt (zero: none), and not after night,
// by obligation id.
func (r *DigestRead) OfficeClosed(ctx context.Context, afterDay date.Date, afterAt time.Time, night date.Date) ([]DigestOfficeClosure, error) {
	var rows []DigestOfficeClosure
	at := sql.NullTime{Time: afterAt, Valid: !afterAt.IsZero()}
	if err := r.tx.SelectContext(ctx, &rows, digestOfficeClosedQuery, afterDay.String(), at, night.String()); err != nil {
		return nil, err
	}
	return rows, nil
}

// PreviousDigestTimes is, for each of keys that has one, when its latest
// digest before night that went out was begun (first claimed): an office
// closure after it is news to the recipient.
func (r *DigestRead) PreviousDigestTimes(ctx context.Context, keys []string, night date.Date) (map[string]time.Time, error) {
	var prev []struct {
		Key string    `db:"recipient_key"`
		At  time.Time `db:"created_at"`
	}
	if err := r.tx.SelectContext(ctx, &prev, `SELECT DISTINCT ON (recipient_key) recipient_key, created_at
		FROM sisnotify.digests WHERE recipient_key = ANY($1) AND night < $2 AND status = 'sent'
		ORDER BY recipient_key, night DESC`, pq.Array(keys), night.String()); err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(prev))
	for _, p := range prev {
		out[p.Key] = p.At
	}
	return out, nil
}

// Items reads the open obligations whose reached step has a bit of mask
// (the digests' bits) in its actions or found_late, by obligation id; a
// row's DeanOf is set when it has deanBit and its student's faculty has a
// dean to write to. Each row is scanned into next(), so that the caller
// holds the rows in its own type: a national roster's digest lists
// hundreds of thousands.
func (r *DigestRead) Items(ctx context.Context, mask, deanBit int, next func() *DigestItem) error {
	return r.scanItems(ctx, next, digestItemsQuery, mask, deanBit)
}

// Moot reads the obligations closed as moot on a night after after and
// not after night, by obligation id, each into next().
func (r *DigestRead) Moot(ctx context.Context, after, night date.Date, next func() *DigestItem) error {
	return r.scanItems(ctx, next, digestMootQuery, after.String(), night.String())
}

func (r *DigestRead) scanItems(ctx context.Context, next func() *DigestItem, q string, args ...any) error {
	rows, err := r.tx.QueryxContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.StructScan(next()); err != nil {
			return err
		}
	}
	return rows.Err()
}

// SentNotices calls fn with each notice delivered for the obligations
// Items(mask) lists, by obligation, then in the order they were sent.
// audience and channel are valid only during the call (they are
// compared, never kept, across a hundred thousand notices).
func (r *DigestRead) SentNotices(ctx context.Context, mask int, fn func(obligationID int64, level int, audience, channel []byte, at time.Time)) error {
	rows, err := r.tx.QueryContext(ctx, `
		SELECT n.obligation_id, n.level, n.audience, n.channel, n.sent_at
		FROM sisnotify.notices n JOIN sisnotify.obligations o ON o.obligation_id = n.obligation_id
		WHERE o.closed_at IS NULL AND (o.actions | o.found_late) & $1 <> 0 AND n.status IN ('sent', 'delivered', 'bounced') AND n.sent_at IS NOT NULL
		ORDER BY n.obligation_id, n.sent_at, n.notice_id`, mask)
	if err != nil {
		return err
	}
	defer rows.Close()
	var id int64
	var level int
	var audience, channel sql.RawBytes
	var at time.Time
	for rows.Next() {
		if err := rows.Scan(&id, &level, &audience, &channel, &at); err != nil {
			return err
		}
		fn(id, level, audience, channel, at)
	}
	return rows.Err()
}

// PreviousDigestNights is, for each of keys that has one, the night of
// its latest digest before night that went out.
func (r *DigestRead) PreviousDigestNights(ctx context.Context, keys []string, night date.Date) (map[string]date.Date, error) {
	var prev []struct {
		Key   string `db:"recipient_key"`
		Night int32  `db:"night"`
	}
	if err := r.tx.SelectContext(ctx, &prev, `SELECT DISTINCT ON (recipient_key) recipient_key, `+dayNum("night")+` AS night
		FROM sisnotify.digests WHERE recipient_key = ANY($1) AND night < $2 AND status = 'sent'
		ORDER BY recipient_key, night DESC`, pq.Array(keys), night.String()); err != nil {
		return nil, err
	}
	out := make(map[string]date.Date, len(prev))
	for _, p := range prev {
		out[p.Key] = date.Date(p.Night)
	}
	return out, nil
}

// DigestFaculty is a faculty whose dean gets a digest.
type DigestFaculty struct {
	ID       string         `db:"faculty_id"`
	Name     string         `db:"name"`
	DeanName string         `db:"dean_name"`
	Email    string         `db:"dean_email"`
	Language sql.NullString `db:"dean_language"`
}

// DeanFaculties reads the faculties of ids that the SIS still lists and
// that have a dean email, by id.
func (r *DigestRead) DeanFaculties(ctx context.Context, ids []string) ([]*DigestFaculty, error) {
	var faculties []*DigestFaculty
	if err := r.tx.SelectContext(ctx, &faculties, `SELECT faculty_id, name, dean_name, dean_email, dean_language
			FROM sisnotify.faculties WHERE faculty_id = ANY($1) AND removed_at IS NULL AND dean_email IS NOT NULL
			ORDER BY faculty_id`, pq.Array(ids)); err != nil {
		return nil, err
	}
	return faculties, nil
}

// DigestFailedNotice is a notice that failed for good, as the office
// digest lists it. Total is how many there are in all.
type DigestFailedNotice struct {
	ID        int64  `db:"notice_id"`
	StudentID string `db:"student_id"`
	Rule      string `db:"rule"`
	Audience  string `db:"audience"`
	Channel   string `db:"channel"`
	Err       string `db:"last_error"`
	Class     string `db:"error_class"`
	Total     int    `db:"total"`
}

// FailedNotices reads the notices of the nights after days before night
// and not after it that failed for good, the most recent first, at most
// limit.
func (r *DigestRead) FailedNotices(ctx context.Context, night date.Date, days, limit int) ([]DigestFailedNotice, error) {
	var failed []DigestFailedNotice
	if err := r.tx.SelectContext(ctx, &failed, `
		SELECT notice_id, student_id, rule, audience, channel, coalesce(last_error, '') AS last_error,
		       coalesce(error_class, '') AS error_class, count(*) OVER () AS total
		FROM sisnotify.notices
		WHERE status = 'failed' AND night > $1::date - $2::int AND night <= $1::date
		ORDER BY night DESC, notice_id DESC LIMIT $3`, night.String(), days, limit); err != nil {
		return nil, err
	}
	return failed, nil
}

// DigestDataProblem is a problem of the SIS's data as the office digest
// lists it: where it is and what it is, never a value (the sync keeps
// values out of data_problems). Total is how many there are in all.
type DigestDataProblem struct {
	Entity  string `db:"entity"`
	RowID   string `db:"row_id"`
	Field   string `db:"field"`
	Code    string `db:"code"`
	Message string `db:"message"`
	Total   int    `db:"total"`
}

// DataProblems reads the data problems, the most recent first (errors
// before warnings), at most limit.
func (r *DigestRead) DataProblems(ctx context.Context, limit int) ([]DigestDataProblem, error) {
	var problems []DigestDataProblem
	if err := r.tx.SelectContext(ctx, &problems, `
		SELECT entity, row_id, field, code, message, count(*) OVER () AS total
		FROM sisnotify.data_problems
		ORDER BY first_seen_at DESC, severity = 'error' DESC, entity, row_id, field, code LIMIT $1`, limit); err != nil {
		return nil, err
	}
	return problems, nil
}

// DigestProblemCount is how many data problems have a code.
type DigestProblemCount struct {
	Code string `db:"code"`
	N    int    `db:"n"`
}

// DataProblemCounts counts the data problems per code, the most frequent
// first.
func (r *DigestRead) DataProblemCounts(ctx context.Context) ([]DigestProblemCount, error) {
	var counts []DigestProblemCount
	if err := r.tx.SelectContext(ctx, &counts, `SELECT code, count(*) AS n FROM sisnotify.data_problems GROUP BY code ORDER BY n DESC, code`); err != nil {
		return nil, err
	}
	return counts, nil
}
