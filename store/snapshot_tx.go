package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/internal/workerdb"
)

// SnapshotTx is a transaction on a dedicated connection that holds the snapshot
// lock, for the stages after a sync (evaluation) that must not overlap with
// a sync or with each other.
type SnapshotTx struct {
	conn *txConn
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

// txConn is the connection of a snapshot transaction: one pgx connection
// (through pgx's database/sql driver, so the rest of the store's SQL runs
// on it unchanged) of its own small pool, which closes with it. A
// snapshot transaction writes in bulk with binary COPY (pgcopy), which
// lib/pq, the driver of the rest of the worker's database, cannot do.
type txConn struct {
	*sql.Conn
	pool *sql.DB
}

// Close closes the connection and its pool.
func (c *txConn) Close() error {
	err := c.Conn.Close()
	if perr := c.pool.Close(); err == nil {
		err = perr
	}
	return err
}

// openTxConn opens a pgx connection to the database db was opened on
// (workerdb.Open).
func openTxConn(ctx context.Context, db *sqlx.DB) (*txConn, error) {
	url, err := workerdb.MustURL(db)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("the worker database's URL: %w", err)
	}
	pool := stdlib.OpenDB(*cfg)
	conn, err := pool.Conn(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &txConn{conn, pool}, nil
}

// lockedTx opens a connection (openTxConn), takes the snapshot lock on it
// (a session lock: released by the caller, or when the connection closes)
// and begins a transaction with plain SQL, so COPY through the driver
// joins it.
func lockedTx(ctx context.Context, db *sqlx.DB) (*txConn, error) {
	conn, err := openTxConn(ctx, db)
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
func (t *SnapshotTx) Conn() *sql.Conn { return t.conn.Conn }

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
