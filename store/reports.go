package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// Reports read the outbox for people and gauges: the notices counted by
// rule, channel and status (the sisnotify_notices metric, run --once's
// summary), a night's failures, and the dry run's list of what a night
// would send.

// NoticeTally is a count of notices of one rule, channel and status.
type NoticeTally struct {
	Rule    string       `db:"rule"`
	Channel string       `db:"channel"`
	Status  NoticeStatus `db:"status"`
	N       int64        `db:"n"`
}

// NoticeTallies counts every notice by rule, channel and status, in no
// particular order.
func (s *Store) NoticeTallies(ctx context.Context) ([]NoticeTally, error) {
	var rows []NoticeTally
	if err := s.db.SelectContext(ctx, &rows, `
		SELECT rule, channel, status, count(*) AS n
		FROM sisnotify.notices
		GROUP BY rule, channel, status`); err != nil {
		return nil, fmt.Errorf("notices: %w", err)
	}
	return rows, nil
}

// NightNoticeTallies counts the notices of night by rule, recipient
// (Channel is the audience and the channel: "student email") and status,
// in that order.
func (s *Store) NightNoticeTallies(ctx context.Context, night date.Date) ([]NoticeTally, error) {
	var rows []NoticeTally
	if err := s.db.SelectContext(ctx, &rows, `SELECT rule, audience || ' ' || channel AS channel, status, count(*) AS n
		FROM sisnotify.notices WHERE night = $1 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, night.String()); err != nil {
		return nil, fmt.Errorf("notices of %s: %w", night, err)
	}
	return rows, nil
}

// FailedNotice is a notice that failed, with its last error ("" when none
// was recorded) and, on every one, how many of its night's notices failed.
type FailedNotice struct {
	ID        int64  `db:"notice_id"`
	StudentID string `db:"student_id"`
	Rule      string `db:"rule"`
	Channel   string `db:"channel"`
	Err       string `db:"last_error"`
	Total     int64  `db:"total"`
}

// NightFailedNotices returns the first 20 failed notices of night, by id,
// and how many of the night's notices failed in all.
func (s *Store) NightFailedNotices(ctx context.Context, night date.Date) ([]FailedNotice, int64, error) {
	var failed []FailedNotice
	if err := s.db.SelectContext(ctx, &failed, `SELECT notice_id, student_id, rule, channel, coalesce(last_error, '') AS last_error, count(*) OVER () AS total
		FROM sisnotify.notices WHERE night = $1 AND status = 'failed' ORDER BY notice_id LIMIT 20`, night.String()); err != nil {
		return nil, 0, fmt.Errorf("failed notices of %s: %w", night, err)
	}
	if len(failed) == 0 {
		return nil, 0, nil
	}
	return failed, failed[0].Total, nil
}

// PlannedNotice is one line of the dry run: a notice the night would send,
// or an obligation a digest would list (Channel "digest", Audience
// "office" or "dean").
type PlannedNotice struct {
	Rule      string
	Level     int
	StudentID string
	SubjectID string
	Audience  string
	Channel   string
	DueOn     string // YYYY-MM-DD
	Repeat    int
}

// PlannedNotices lists, on conn (inside the night's transaction), the
// notices that would be sent (every pending one: tonight's and any still
// waiting) and the obligations tonight's digests would list, in a stable
// order. offices is the number of the office's addresses (0: the office
// digest is not listed); officeDigest and deanDigest are the action bits
// (rules.OfficeDigest, rules.DeanDigest) that put an obligation in the
// office's and in the deans' digests. Each recipient gets one digest a
// night: a digest already sent (or refused for good) that night is not
// listed again, as a rerun does not send it; the office digest is listed
// while any of the office's addresses (digest recipients
// office1..officeN) has not had it.
func PlannedNotices(ctx context.Context, conn *sql.Conn, night date.Date, offices, officeDigest, deanDigest int) ([]PlannedNotice, error) {
	rows, err := conn.QueryContext(ctx, `
		SELECT rule, level, student_id, subject_id, audience, channel, due_on::text, repeat, notice_key AS k
		FROM sisnotify.notices WHERE status IN ('pending', 'sending')
		UNION ALL
		SELECT o.rule, o.level, o.student_id, o.subject_id, 'office', 'digest', o.due_on::text, o.repeat, ''
		FROM sisnotify.obligations o
		WHERE $1 > 0 AND o.closed_at IS NULL AND (o.actions | o.found_late) & $2 <> 0
		  AND EXISTS (SELECT FROM generate_series(1, $1) AS i WHERE NOT EXISTS (SELECT FROM sisnotify.digests g
		      WHERE g.night = $4 AND g.recipient_key = 'office' || i AND g.status IN ('sent', 'failed')))
		UNION ALL
		SELECT o.rule, o.level, o.student_id, o.subject_id, 'dean', 'digest', o.due_on::text, o.repeat, ''
		FROM sisnotify.obligations o
		JOIN sisnotify.students s ON s.student_id = o.student_id
		JOIN sisnotify.faculties f ON f.faculty_id = s.faculty_id AND f.removed_at IS NULL AND f.dean_email IS NOT NULL
		WHERE o.closed_at IS NULL AND (o.actions | o.found_late) & $3 <> 0
		  AND NOT EXISTS (SELECT FROM sisnotify.digests g
		      WHERE g.night = $4 AND g.recipient_key = 'dean-' || f.faculty_id AND g.status IN ('sent', 'failed'))
		ORDER BY 3, 1, 4, 2, 5, 6, 9`, offices, officeDigest, deanDigest, night.String())
	if err != nil {
		return nil, fmt.Errorf("dry run: %w", plannedPQDetail(err))
	}
	defer rows.Close()
	var out []PlannedNotice
	for rows.Next() {
		var p PlannedNotice
		var key string
		if err := rows.Scan(&p.Rule, &p.Level, &p.StudentID, &p.SubjectID, &p.Audience, &p.Channel, &p.DueOn, &p.Repeat, &key); err != nil {
			return nil, fmt.Errorf("dry run: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// plannedPQDetail adds PostgreSQL's detail, when it gave one, to the
// error's text.
func plannedPQDetail(err error) error {
	if e, ok := err.(*pq.Error); ok && e.Detail != "" {
		return fmt.Errorf("%w (%s)", err, e.Detail)
	}
	return err
}

// DataProblemsByCode is the query an operator runs by hand to see the
// data problems of the last sync by table and code (the demo prints it).
const DataProblemsByCode = "SELECT entity, code, count(*) FROM sisnotify.data_problems GROUP BY 1, 2;"
