package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// NoticesToGo counts the notices that may go now and are not sent yet
// (pending or being sent, not held for quiet hours) of night, or of every
// night when night is 0. Counted through the partial index of pending
// notices: cheap however large the outbox is.
func (s *Store) NoticesToGo(ctx context.Context, night date.Date) (int64, error) {
	q := `SELECT count(*) FROM sisnotify.notices
		WHERE status IN ('pending', 'sending') AND (not_before IS NULL OR not_before <= now())`
	var args []any
	if night != 0 {
		q += ` AND night = $1`
		args = append(args, night.String())
	}
	var n int64
	if err := s.db.GetContext(ctx, &n, q, args...); err != nil {
		return 0, fmt.Errorf("count notices to go: %w", err)
	}
	return n, nil
}

// NoticeFilter selects notices of the log.
type NoticeFilter struct {
	Status, StudentID, Rule string
	Night                   date.Date
	IDs                     []int64
}

// where renders the filter as SQL conditions from argument n on.
func (f NoticeFilter) where(args []any) (string, []any) {
	cond := "true"
	add := func(c string, v any) {
		args = append(args, v)
		cond += fmt.Sprintf(" AND %s $%d", c, len(args))
	}
	if f.Status != "" {
		add("status =", f.Status)
	}
	if f.StudentID != "" {
		add("student_id =", f.StudentID)
	}
	if f.Rule != "" {
		add("rule =", f.Rule)
	}
	if f.Night != 0 {
		add("night =", f.Night.String())
	}
	if len(f.IDs) > 0 {
		add("notice_id = ANY(", pq.Array(f.IDs))
		cond += ")"
	}
	return cond, args
}

// NoticeRow is one line of the notice log.
type NoticeRow struct {
	ID        int64          `db:"notice_id" json:"notice_id"`
	Night     string         `db:"night" json:"night"`
	StudentID string         `db:"student_id" json:"student_id"`
	SubjectID string         `db:"subject_id" json:"subject_id"`
	Rule      string         `db:"rule" json:"rule"`
	Level     int            `db:"level" json:"level"`
	Repeat    int            `db:"repeat" json:"repeat"`
	Audience  string         `db:"audience" json:"audience"`
	Channel   string         `db:"channel" json:"channel"`
	Status    string         `db:"status" json:"status"`
	Attempts  int            `db:"attempts" json:"attempts"`
	Language  sql.NullString `db:"language" json:"-"`
	SentAt    sql.NullString `db:"sent_at" json:"-"`
	LastError sql.NullString `db:"last_error" json:"-"`
	Class     sql.NullString `db:"error_class" json:"-"`
}

// ListNotices returns the notice log that matches f, newest first, at most
// limit rows, and how many match in all (more than the rows when the list
// was cut).
func (s *Store) ListNotices(ctx context.Context, f NoticeFilter, limit int) ([]NoticeRow, int, error) {
	cond, args := f.where(nil)
	args = append(args, limit)
	var out []struct {
		NoticeRow
		Total int `db:"total"`
	}
	err := s.db.SelectContext(ctx, &out, `SELECT notice_id, night::text, student_id, subject_id, rule, level, repeat, audience, channel, status, attempts,
		language, to_char(sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS sent_at, last_error, error_class, count(*) OVER () AS total
		FROM sisnotify.notices WHERE `+cond+fmt.Sprintf(` ORDER BY notice_id DESC LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("notices: %w", err)
	}
	rows := make([]NoticeRow, len(out))
	total := 0
	for i, r := range out {
		rows[i], total = r.NoticeRow, r.Total
	}
	return rows, total, nil
}

// NoticeKey is a notice's id and its key (the TaskID of its delivery).
type NoticeKey struct {
	ID  int64  `db:"notice_id"`
	Key string `db:"notice_key"`
}

// WaitingNotice is a pending notice that may go now: not held for quiet
// hours (not_before in the future).
type WaitingNotice = NoticeKey

// WaitingNotices returns the pending notices that match f and may go now
// (an SMS held for quiet hours stays held), oldest first: those whose
// tasks may wait for a retry after a temporary failure.
func (s *Store) WaitingNotices(ctx context.Context, f NoticeFilter) ([]WaitingNotice, error) {
	f.Status = string(NoticePending)
	cond, args := f.where(nil)
	var out []WaitingNotice
	if err := s.db.SelectContext(ctx, &out, `SELECT notice_id, notice_key FROM sisnotify.notices
		WHERE `+cond+` AND (not_before IS NULL OR not_before <= now()) ORDER BY notice_id`, args...); err != nil {
		return nil, fmt.Errorf("pending notices: %w", err)
	}
	return out, nil
}

// FailedNotices returns the failed notices that match f (whatever its
// Status), oldest first: those a re-queue puts back to pending.
func (s *Store) FailedNotices(ctx context.Context, f NoticeFilter) ([]NoticeKey, error) {
	f.Status = string(NoticeFailed)
	cond, args := f.where(nil)
	var failed []NoticeKey
	if err := s.db.SelectContext(ctx, &failed, `SELECT notice_id, notice_key FROM sisnotify.notices WHERE `+cond+` ORDER BY notice_id`, args...); err != nil {
		return nil, fmt.Errorf("requeue: %w", err)
	}
	return failed, nil
}

// RequeueFailedNotices puts the notices of ids that are still failed back
// to pending and returns them. A notice keeps its attempts, last error and
// error class.
func (s *Store) RequeueFailedNotices(ctx context.Context, ids []int64) ([]int64, error) {
	var done []int64
	if err := s.db.SelectContext(ctx, &done, `UPDATE sisnotify.notices SET status = 'pending', updated_at = now()
		WHERE notice_id = ANY($1) AND status = 'failed' RETURNING notice_id`, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("requeue: %w", err)
	}
	return done, nil
}

// RecordRequeue records that who re-queued ids (kind "failed": failed
// notices back to pending; "pending": pending notices sent now, whatever
// their back-off) in sisnotify.notice_requeues. Nothing is recorded for
// none.
func (s *Store) RecordRequeue(ctx context.Context, who, kind string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if who == "" {
		who = "unknown"
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO sisnotify.notice_requeues (who, kind, notices, notice_ids) VALUES ($1, $2, $3, $4)`,
		who, kind, len(ids), pq.Array(ids)); err != nil {
		return fmt.Errorf("requeue: record: %w", err)
	}
	return nil
}

// PendingNoticeError is how many notices still waiting to be sent last
// failed with one error (Class and Err "": none recorded).
type PendingNoticeError struct {
	Class string `db:"error_class"`
	Err   string `db:"last_error"`
	N     int    `db:"n"`
}

// PendingNoticeErrors counts the notices still waiting to be sent (pending
// or sending) of nights up to night (0: every night) by their last error
// and its class. A notice held for quiet hours is left out; so, with
// failedOnly, is one with no error recorded. q is the pool or the
// transaction of the caller (the digest reads it in its snapshot).
func PendingNoticeErrors(ctx context.Context, q sqlx.QueryerContext, night date.Date, failedOnly bool) ([]PendingNoticeError, error) {
	var rows []PendingNoticeError
	query := `SELECT coalesce(error_class, '') AS error_class, coalesce(last_error, '') AS last_error, count(*) AS n
		FROM sisnotify.notices WHERE status IN ('pending', 'sending') AND (not_before IS NULL OR not_before <= now())`
	if failedOnly {
		query += ` AND last_error IS NOT NULL`
	}
	var args []any
	if night != 0 {
		query += ` AND night <= $1::date`
		args = append(args, night.String())
	}
	if err := sqlx.SelectContext(ctx, q, &rows, query+` GROUP BY 1, 2`, args...); err != nil {
		return nil, err
	}
	return rows, nil
}

// NoticesToGoByChannel counts, by channel, the notices of nights up to
// night still to be sent (pending or sending) that may go at at: a
// student SMS held for quiet hours until later is left out.
func (s *Store) NoticesToGoByChannel(ctx context.Context, night date.Date, at time.Time) (map[string]int, error) {
	var rows []struct {
		Channel string `db:"channel"`
		N       int    `db:"n"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT channel, count(*) AS n FROM sisnotify.notices
		WHERE status IN ('pending', 'sending') AND night <= $1 AND (not_before IS NULL OR not_before <= $2)
		GROUP BY channel`, night.String(), at); err != nil {
		return nil, fmt.Errorf("count notices to go by channel: %w", err)
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.Channel] = r.N
	}
	return out, nil
}
