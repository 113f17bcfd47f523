package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// SnapshotTx is a transaction on a dedicated connection that holds the snapshot
// lock, for the stages after a sync (evaluation) that must not overlap with
// a sync or with each other.
type SnapshotTx struct {
	conn *sql.Conn
	done bool
}

// BeginSnapshotTx takes the snapshot lock and begins a transaction. It fails with
// ErrBusy while a sync or another evaluation runs.
func BeginSnapshotTx(ctx context.Context, db *sqlx.DB) (*SnapshotTx, error) {
	conn, err := lockedTx(ctx, db)
	if err != nil {
		return nil, err
	}
	return &SnapshotTx{conn: conn}, nil
}

// lockedTx takes a connection, the snapshot lock on it (a session lock:
// released by the caller, or when the connection closes) and begins a
// transaction with plain SQL, so COPY through the driver joins it.
func lockedTx(ctx context.Context, db *sqlx.DB) (*sql.Conn, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, int64(lockKey)).Scan(&got); err != nil {
		conn.Close()
		return nil, fmt.Errorf("snapshot: lock: %w", err)
	}
	if !got {
		conn.Close()
		return nil, ErrBusy
	}
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		_, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(lockKey))
		conn.Close()
		return nil, fmt.Errorf("snapshot: begin: %w", err)
	}
	return conn, nil
}

// Conn is the transaction's connection.
func (t *SnapshotTx) Conn() *sql.Conn { return t.conn }

// Commit commits and releases the lock.
func (t *SnapshotTx) Commit(ctx context.Context) error {
	if t.done {
		return nil
	}
	_, err := t.conn.ExecContext(ctx, `COMMIT`)
	t.release()
	if err != nil {
		return fmt.Errorf("snapshot: commit: %w", err)
	}
	return nil
}

// Rollback abandons the transaction; safe after Commit.
func (t *SnapshotTx) Rollback() {
	if t.done {
		return
	}
	_, _ = t.conn.ExecContext(context.Background(), `ROLLBACK`)
	t.release()
}

func (t *SnapshotTx) release() {
	t.done = true
	_, _ = t.conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(lockKey))
	t.conn.Close()
}
