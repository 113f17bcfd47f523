package store

import (
	"context"
	"database/sql"
	"fmt"
)

// bounceLockKey is the advisory lock held while one process reads the
// bounce mailbox ("bounces" in ASCII).
const bounceLockKey = 0x626f756e636573

// TryLockBounces takes the bounce mailbox's lock if no other process holds
// it: ok is false when one does (it is reading the mailbox now). The lock
// is a session lock on a connection of its own, so it is gone when the
// process dies; unlock releases it and returns the connection.
func (s *Store) TryLockBounces(ctx context.Context) (unlock func(), ok bool, err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("bounce lock: %w", err)
	}
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, int64(bounceLockKey)).Scan(&ok); err != nil {
		conn.Close()
		return nil, false, fmt.Errorf("bounce lock: %w", err)
	}
	if !ok {
		conn.Close()
		return nil, false, nil
	}
	return func() { unlockBounces(conn) }, true, nil
}

func unlockBounces(conn *sql.Conn) {
	_, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(bounceLockKey))
	conn.Close()
}
