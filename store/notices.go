package store

import (
	"context"
	"fmt"

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
