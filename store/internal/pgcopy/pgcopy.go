// Package pgcopy writes rows into PostgreSQL with binary COPY ... FROM
// STDIN over pgx, from rows the caller encodes itself: the worker's bulk
// writes (the snapshot's initial load and staging, tonight's obligations).
//
// Rows go through pgconn's CopyFrom, the protocol side of pgx. They are
// encoded here rather than by pgx's CopyFrom because that takes every
// value as an interface and finds its encoder per value: at a million
// students of 27 columns each, tens of millions of conversions in the one
// goroutine that feeds the server, where this package appends bytes to a
// reused buffer in the goroutines that validate the rows. The binary
// format needs no parsing on the server's side (dates and timestamps
// arrive as numbers), which is what made the text COPY slow.
package pgcopy

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// Copy streams encoded rows into one table over a connection.
type Copy struct {
	pw   *io.PipeWriter
	done chan error
	rows int64
	// buf gathers rows until it holds batchSize bytes: one write to the
	// pipe, so one wake of the goroutine that sends it, per batch.
	buf []byte
	err error
}

// batchSize is how many bytes of rows one write to the server carries.
const batchSize = 64 << 10

// header is the binary COPY signature, flags and header extension length.
var header = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// ErrDriver is returned when the connection is not a pgx connection.
var ErrDriver = errors.New("pgcopy needs a connection of pgx's database/sql driver (stdlib)")

// Start begins COPY table (cols) FROM STDIN (FORMAT binary) on conn, a
// connection of pgx's database/sql driver. The connection is busy with the
// COPY until Finish; it may be in a transaction, which the rows then join.
func Start(ctx context.Context, conn *sql.Conn, table string, cols string) (*Copy, error) {
	pr, pw := io.Pipe()
	c := &Copy{pw: pw, done: make(chan error, 1), buf: append(make([]byte, 0, batchSize+4<<10), header...)}
	started := make(chan error, 1)
	go func() {
		c.done <- conn.Raw(func(dc any) error {
			sc, ok := dc.(*stdlib.Conn)
			if !ok {
				started <- ErrDriver
				return ErrDriver
			}
			started <- nil
			_, err := sc.Conn().PgConn().CopyFrom(ctx, pr, "COPY "+table+" ("+cols+") FROM STDIN (FORMAT binary)")
			if err != nil {
				// A writer waiting on the pipe must not wait for ever.
				pr.CloseWithError(err)
			}
			return err
		})
	}()
	// Raw may fail before it calls back (a closed connection): then only
	// done says so.
	select {
	case err := <-started:
		if err != nil {
			<-c.done
			return nil, fmt.Errorf("copy into %s: %w", table, err)
		}
	case err := <-c.done:
		if err == nil {
			err = errors.New("the connection ended the COPY before it began")
		}
		return nil, fmt.Errorf("copy into %s: %w", table, err)
	}
	return c, nil
}

// Row sends one encoded row (Line.B).
func (c *Copy) Row(row []byte) error {
	c.rows++
	return c.Rows(row)
}

// Rows sends encoded rows, one after another. Rows are batched: an error
// of the server may be reported by a later call or by Finish.
func (c *Copy) Rows(rows []byte) error {
	if c.err != nil {
		return c.err
	}
	c.buf = append(c.buf, rows...)
	if len(c.buf) < batchSize {
		return nil
	}
	return c.flush()
}

func (c *Copy) flush() error {
	if len(c.buf) == 0 || c.err != nil {
		return c.err
	}
	_, err := c.pw.Write(c.buf)
	c.buf = c.buf[:0]
	if err != nil {
		c.err = err
	}
	return err
}

// Finish sends what is batched, ends the COPY and reports any error of the
// rows sent.
func (c *Copy) Finish() error {
	c.buf = append(c.buf, 0xff, 0xff) // the trailer: a row of -1 columns
	ferr := c.flush()
	c.pw.Close() // the COPY ends when its reader sees the pipe closed
	if err := <-c.done; err != nil {
		return err
	}
	return ferr
}

// Line builds one row in COPY's binary format. The column types must be
// those of the table's columns exactly: the server checks each value's
// length against its type (a bigint column takes Int64, an integer
// column Int32).
type Line struct {
	B    []byte
	cols int
}

// Reset starts a new row.
func (l *Line) Reset() { l.B, l.cols = append(l.B[:0], 0, 0), 0 }

// field starts a column of n bytes and counts it in the row's header.
func (l *Line) field(n int) {
	l.cols++
	binary.BigEndian.PutUint16(l.B[0:2], uint16(l.cols))
	l.B = binary.BigEndian.AppendUint32(l.B, uint32(int32(n)))
}

// Str appends a text column.
func (l *Line) Str(s string) {
	l.field(len(s))
	l.B = append(l.B, s...)
}

// Nullable appends a text column that is NULL when s is empty.
func (l *Line) Nullable(s string) {
	if s == "" {
		l.Null()
		return
	}
	l.Str(s)
}

// JSONB appends a jsonb column holding js.
func (l *Line) JSONB(js []byte) {
	l.field(1 + len(js))
	l.B = append(l.B, 1) // the jsonb format's version
	l.B = append(l.B, js...)
}

// Null appends a NULL column.
func (l *Line) Null() {
	l.cols++
	binary.BigEndian.PutUint16(l.B[0:2], uint16(l.cols))
	l.B = append(l.B, 0xff, 0xff, 0xff, 0xff)
}

// pgEpochDays is 2000-01-01, PostgreSQL's day 0, in date.Date's numbering.
var pgEpochDays = date.Of(2000, time.January, 1)

// Date appends a date column, NULL when zero.
func (l *Line) Date(d date.Date) {
	if d == 0 {
		l.Null()
		return
	}
	l.field(4)
	l.B = binary.BigEndian.AppendUint32(l.B, uint32(int32(d-pgEpochDays)))
}

// pgEpoch is 2000-01-01 00:00 UTC, PostgreSQL's timestamp 0.
var pgEpoch = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// Micros is t as a timestamptz value: microseconds since 2000-01-01 UTC.
func Micros(t time.Time) int64 {
	// Sub saturates at about 292 years; timestamps are well inside it.
	d := t.Sub(pgEpoch)
	if d == math.MinInt64 || d == math.MaxInt64 {
		return int64(d)
	}
	return d.Microseconds()
}

// Timestamp appends a timestamptz column of Micros, NULL when t is zero.
func (l *Line) Timestamp(t time.Time) {
	if t.IsZero() {
		l.Null()
		return
	}
	l.Int64(Micros(t))
}

// Int64 appends a bigint (or timestamptz, in Micros) column.
func (l *Line) Int64(v int64) {
	l.field(8)
	l.B = binary.BigEndian.AppendUint64(l.B, uint64(v))
}

// Int32 appends an integer column.
func (l *Line) Int32(v int32) {
	l.field(4)
	l.B = binary.BigEndian.AppendUint32(l.B, uint32(v))
}

// Bool appends a boolean column, NULL when not known.
func (l *Line) Bool(v, known bool) {
	if !known {
		l.Null()
		return
	}
	l.field(1)
	if v {
		l.B = append(l.B, 1)
	} else {
		l.B = append(l.B, 0)
	}
}
