package store

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// QueuedNotice is what the queue needs of a notice to give it a task.
type QueuedNotice struct {
	ID       int64  `db:"notice_id"`
	Key      string `db:"notice_key"`
	Channel  string `db:"channel"`
	Audience string `db:"audience"`
	DueOn    int32  `db:"due_on"`
}

// ClaimableNotices are the rows of ClaimableNotices, read as they come.
type ClaimableNotices struct{ rows *sqlx.Rows }

// ClaimableNotices returns the notices that may be claimed (pending, or
// sending for an owner that died or for longer than lease; not snoozed by
// the office as of today, the university's date), oldest first: those the
// queue must hold a task for. A snoozed notice is left out until its date,
// so that the queue does not run it only to skip it. The caller reads them
// with Next and Scan, then checks Err, and closes them.
func (s *Store) ClaimableNotices(ctx context.Context, lease time.Duration, today date.Date) (*ClaimableNotices, error) {
	rows, err := s.db.QueryxContext(ctx, `
		SELECT notice_id, notice_key, channel, audience, `+dayNum("due_on")+` AS due_on
		FROM sisnotify.notices
		WHERE `+noticeClaimable("$1")+` AND `+noticeNotSnoozed("$2")+`
		ORDER BY notice_id`, leaseSeconds(lease), today.String())
	if err != nil {
		return nil, err
	}
	return &ClaimableNotices{rows}, nil
}

// Next prepares the next notice for Scan; false at the end or on an error
// (see Err).
func (c *ClaimableNotices) Next() bool { return c.rows.Next() }

// Scan reads the current notice.
func (c *ClaimableNotices) Scan(n *QueuedNotice) error { return c.rows.StructScan(n) }

// Err is the error that ended Next, if any.
func (c *ClaimableNotices) Err() error { return c.rows.Err() }

// Close releases the rows' connection.
func (c *ClaimableNotices) Close() error { return c.rows.Close() }

// HoldNotices records that the notices of ids may not go before at (an SMS
// held for quiet hours), so that a night knows they are not late.
func (s *Store) HoldNotices(ctx context.Context, at time.Time, ids []int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE sisnotify.notices SET not_before = $1 WHERE notice_id = ANY($2)`, at, pq.Array(ids))
	return err
}

// RescuableNotice is a notice a dead process left claimed, with the
// attempts that name its second task.
type RescuableNotice struct {
	ID       int64  `db:"notice_id"`
	Key      string `db:"notice_key"`
	Attempts int    `db:"attempts"`
	Audience string `db:"audience"`
}

// RescuableNotices returns the notices of ids (those of orphaned tasks)
// that may be claimed (see ClaimableNotices), and those claimed by an
// owner that died, whose tasks asynq does not show orphaned yet (for up to
// 30 s after the death).
func (s *Store) RescuableNotices(ctx context.Context, lease time.Duration, ids []int64) ([]RescuableNotice, error) {
	var rows []RescuableNotice
	if err := s.db.SelectContext(ctx, &rows, `SELECT notice_id, notice_key, attempts, audience FROM sisnotify.notices
		WHERE notice_id = ANY($2) AND `+noticeClaimable("$1")+`
		UNION
		SELECT notice_id, notice_key, attempts, audience FROM sisnotify.notices
		WHERE status = 'sending' AND `+OwnerDead("claimed_by"), leaseSeconds(lease), pq.Array(ids)); err != nil {
		return nil, err
	}
	return rows, nil
}
