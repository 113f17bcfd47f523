package store

import (
	"context"
	"fmt"
	"time"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// ConsolePageNight is a night as the console's Nights page shows it.
type ConsolePageNight struct {
	Night      date.Date  `db:"night"`
	Phase      string     `db:"phase"`
	Status     string     `db:"status"`
	Cause      string     `db:"cause"`
	Error      string     `db:"error"`
	Counts     []byte     `db:"counts"` // JSON: phase → its counts
	StartedAt  time.Time  `db:"started_at"`
	FinishedAt *time.Time `db:"finished_at"`
}

// ConsolePageNights reads the latest nights, the newest first, at most
// limit.
func (s *Store) ConsolePageNights(ctx context.Context, limit int) ([]ConsolePageNight, error) {
	var out []ConsolePageNight
	if err := s.db.SelectContext(ctx, &out, `SELECT `+dayNum("night")+` AS night, phase, status, coalesce(cause, '') AS cause,
		coalesce(error, '') AS error, counts, started_at, finished_at
		FROM sisnotify.nights ORDER BY night DESC LIMIT $1`, limit); err != nil {
		return nil, fmt.Errorf("console nights: %w", err)
	}
	return out, nil
}

// ConsolePageFailedNotices reads a page of the notices that failed for
// good, the newest first (by night, then id), limit from offset, and how
// many there are in all.
func (s *Store) ConsolePageFailedNotices(ctx context.Context, offset, limit int) ([]ConsolePageNotice, int, error) {
	var out []ConsolePageNotice
	if err := s.db.SelectContext(ctx, &out, `SELECT `+consoleNoticeCols+` FROM sisnotify.notices n
		WHERE n.status = 'failed' ORDER BY n.night DESC, n.notice_id DESC LIMIT $1 OFFSET $2`, limit, offset); err != nil {
		return nil, 0, fmt.Errorf("console failed notices: %w", err)
	}
	var total int
	if err := s.db.GetContext(ctx, &total, `SELECT count(*) FROM sisnotify.notices WHERE status = 'failed'`); err != nil {
		return nil, 0, fmt.Errorf("console failed notices: count: %w", err)
	}
	return out, total, nil
}

// ConsolePageAudit reads a page of the audit log, the newest first, limit
// from offset, and how many rows there are in all.
func (s *Store) ConsolePageAudit(ctx context.Context, offset, limit int) ([]ConsolePageAuditRow, int, error) {
	var out []ConsolePageAuditRow
	if err := s.db.SelectContext(ctx, &out, `SELECT `+consoleAuditCols+` FROM sisnotify.audit_log
		ORDER BY at DESC, audit_id DESC LIMIT $1 OFFSET $2`, limit, offset); err != nil {
		return nil, 0, fmt.Errorf("console audit: %w", err)
	}
	var total int
	if err := s.db.GetContext(ctx, &total, `SELECT count(*) FROM sisnotify.audit_log`); err != nil {
		return nil, 0, fmt.Errorf("console audit: count: %w", err)
	}
	return out, total, nil
}
