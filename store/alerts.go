package store

import (
	"context"
	"fmt"
)

// An operator alert (sisnotify.alerts) is open until resolved; at most one
// of each kind is open at a time (the partial unique index alerts_open),
// and it is mailed once: notified_at says it was.

// OpenAlert opens the alert of kind with subject unless one of that kind
// is open, and returns the open alert's id and whether it was mailed.
func (s *Store) OpenAlert(ctx context.Context, kind, subject string) (id int64, notified bool, err error) {
	err = s.db.QueryRowxContext(ctx, `
		WITH ins AS (INSERT INTO sisnotify.alerts (kind, subject) VALUES ($1, $2) ON CONFLICT (kind) WHERE resolved_at IS NULL DO NOTHING RETURNING alert_id, false AS notified)
		SELECT alert_id, notified FROM ins
		UNION ALL SELECT alert_id, notified_at IS NOT NULL FROM sisnotify.alerts WHERE kind = $1 AND resolved_at IS NULL
		LIMIT 1`, kind, subject).Scan(&id, &notified)
	if err != nil {
		return 0, false, fmt.Errorf("alert %s: %w", kind, err)
	}
	return id, notified, nil
}

// AlertNotified records that the alert id was mailed.
func (s *Store) AlertNotified(ctx context.Context, id int64) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE sisnotify.alerts SET notified_at = now() WHERE alert_id = $1`, id); err != nil {
		return fmt.Errorf("alert %d notified: %w", id, err)
	}
	return nil
}

// ResolveAlert resolves the open alert of kind, if any, and says whether
// there was one.
func (s *Store) ResolveAlert(ctx context.Context, kind string) (bool, error) {
	r, err := s.db.ExecContext(ctx, `UPDATE sisnotify.alerts SET resolved_at = now() WHERE kind = $1 AND resolved_at IS NULL`, kind)
	if err != nil {
		return false, fmt.Errorf("alert %s: %w", kind, err)
	}
	n, _ := r.RowsAffected()
	return n > 0, nil
}
