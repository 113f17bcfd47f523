// Package migrations creates and upgrades the worker's own tables, all in
// the PostgreSQL schema "sisnotify" so the worker can share a database.
//
// The SQL files under sql/ are embedded and applied with goose; the version
// table is sisnotify.goose_db_version. Up is idempotent and safe to run on
// every start, from several replicas at once: a PostgreSQL advisory lock
// lets one of them apply the migrations while the others wait.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

// Schema is the PostgreSQL schema that holds every table of the worker.
const Schema = "sisnotify"

//go:embed sql/*.sql
var files embed.FS

// lockKey is the advisory lock taken while migrating ("sisnotif" in ASCII).
const lockKey = 0x7369736e6f746966

// Result says what Up did.
type Result struct {
	Applied []int64 // versions applied by this call
	Current int64   // the schema version afterwards
}

// Up creates the schema if needed and applies every pending migration.
func Up(ctx context.Context, db *sql.DB) (Result, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(lockKey)); err != nil {
		return Result{}, fmt.Errorf("migrate: take lock: %w", err)
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(lockKey)) //nolint:errcheck // the session ends with conn anyway
	if _, err := conn.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+Schema); err != nil {
		return Result{}, fmt.Errorf("migrate: create schema: %w", err)
	}
	p, err := provider(db)
	if err != nil {
		return Result{}, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("migrate: %w", err)
	}
	var res Result
	for _, r := range results {
		res.Applied = append(res.Applied, r.Source.Version)
	}
	if res.Current, err = p.GetDBVersion(ctx); err != nil {
		return res, fmt.Errorf("migrate: read version: %w", err)
	}
	return res, nil
}

// Pending reports how many migrations are not applied yet (0 when the
// database is current), without changing anything.
func Pending(ctx context.Context, db *sql.DB) (int, error) {
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, Schema+".goose_db_version").Scan(&exists); err != nil {
		return 0, fmt.Errorf("check migrations: %w", err)
	}
	p, err := provider(db)
	if err != nil {
		return 0, err
	}
	if !exists {
		return len(p.ListSources()), nil
	}
	st, err := p.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("check migrations: %w", err)
	}
	n := 0
	for _, s := range st {
		if s.State == goose.StatePending {
			n++
		}
	}
	return n, nil
}

func provider(db *sql.DB) (*goose.Provider, error) {
	sub, err := fs.Sub(files, "sql")
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
		goose.WithTableName(Schema+".goose_db_version"),
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return p, nil
}
