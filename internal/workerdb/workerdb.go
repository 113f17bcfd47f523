// Package workerdb opens the worker's own PostgreSQL database. Everything
// but the snapshot's bulk work goes through the pool it returns (lib/pq,
// through sqlx); the pool remembers its URL, so that the snapshot's
// transactions (the sync, the evaluation) can open their connection with
// pgx on the same database (store's SnapshotTx and SyncWriter), for
// binary COPY, which lib/pq cannot do.
package workerdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Open returns a pool on the database at url (a PostgreSQL URL or
// key=value string) without connecting yet, like sqlx.Open("postgres",
// url), but one whose URL URL can tell.
func Open(url string) (*sqlx.DB, error) {
	c, err := pq.NewConnector(url)
	if err != nil {
		return nil, err
	}
	return sqlx.NewDb(sql.OpenDB(connector{c, url}), "postgres"), nil
}

// URL is the URL db was opened with, ok false when db was not opened by
// Open.
func URL(db *sqlx.DB) (url string, ok bool) {
	if d, ok := db.Driver().(urlDriver); ok {
		return d.url, true
	}
	return "", false
}

// MustURL is URL, or an error that says what the caller must do.
func MustURL(db *sqlx.DB) (string, error) {
	if u, ok := URL(db); ok {
		return u, nil
	}
	return "", fmt.Errorf("the worker database was not opened with workerdb.Open: its URL is unknown")
}

// connector is lib/pq's connector whose Driver knows the URL.
type connector struct {
	pq  *pq.Connector
	url string
}

func (c connector) Connect(ctx context.Context) (driver.Conn, error) { return c.pq.Connect(ctx) }
func (c connector) Driver() driver.Driver                            { return urlDriver{url: c.url} }

// urlDriver is lib/pq's driver, carrying the URL.
type urlDriver struct {
	pq.Driver
	url string
}
