// Package pgcopy writes rows into PostgreSQL with COPY ... FROM STDIN over
// lib/pq, from lines the caller encodes itself (no per-value conversion):
// the worker's bulk writes (snapshot staging, tonight's obligations).
package pgcopy

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// Copy streams pre-encoded COPY text lines into one table over a
// connection, through lib/pq's CopyData (no per-value conversion).
type Copy struct {
	stmt driver.Stmt
	data interface {
		CopyData(ctx context.Context, line string) (driver.Result, error)
	}
	rows int64
	// buf gathers lines (each but the last ending in '\n'): lib/pq starts
	// a goroutine to watch the context on every CopyData call, which
	// costs more than encoding a row, so rows go to it in batches.
	buf []byte
}

// batchSize is how many bytes of lines one CopyData call carries.
const batchSize = 60 << 10

// Start begins COPY table (cols) FROM STDIN on conn, which must be in a
// transaction begun with plain SQL (BEGIN) so Raw sees the same session.
func Start(ctx context.Context, conn *sql.Conn, table string, cols string) (*Copy, error) {
	c := &Copy{}
	err := conn.Raw(func(dc any) error {
		prep, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return errors.New("driver cannot prepare COPY")
		}
		st, err := prep.PrepareContext(ctx, "COPY "+table+" ("+cols+") FROM STDIN")
		if err != nil {
			return err
		}
		cd, ok := st.(interface {
			CopyData(ctx context.Context, line string) (driver.Result, error)
		})
		if !ok {
			st.Close()
			return errors.New("driver has no CopyData")
		}
		c.stmt, c.data = st, cd
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("copy into %s: %w", table, err)
	}
	return c, nil
}

// Line sends one encoded row (without its newline).
func (c *Copy) Line(ctx context.Context, line []byte) error {
	c.rows++
	return c.Lines(ctx, line)
}

// Lines sends encoded rows separated by '\n', without a final newline.
// Rows are batched: an error of the server may be reported by a later
// call or by Finish.
func (c *Copy) Lines(ctx context.Context, lines []byte) error {
	if len(lines) == 0 {
		return nil
	}
	if len(c.buf) > 0 {
		c.buf = append(c.buf, '\n')
	}
	c.buf = append(c.buf, lines...)
	if len(c.buf) < batchSize {
		return nil
	}
	return c.flush(ctx)
}

func (c *Copy) flush(ctx context.Context) error {
	if len(c.buf) == 0 {
		return nil
	}
	// CopyData appends its own newline after the batch.
	_, err := c.data.CopyData(ctx, string(c.buf))
	c.buf = c.buf[:0]
	return err
}

// Finish sends what is batched, ends the COPY and reports any error of the
// rows sent. Like lib/pq's end of a COPY, it does not watch a context: the
// one of the rows may be over by now (lib/pq would take its end for a
// cancellation and drop the connection).
func (c *Copy) Finish() error {
	ferr := c.flush(context.Background())
	//lint:ignore SA1019 Exec(nil) is how lib/pq ends a COPY.
	_, err := c.stmt.Exec(nil) //nolint:staticcheck
	cerr := c.stmt.Close()
	switch {
	case err != nil:
		return err
	case ferr != nil:
		return ferr
	}
	return cerr
}

// Line builds one COPY text row.
type Line struct {
	B    []byte
	cols int
}

// Reset starts a new row.
func (l *Line) Reset() { l.B, l.cols = l.B[:0], 0 }

// Sep starts a new column.
func (l *Line) Sep() {
	if l.cols > 0 {
		l.B = append(l.B, '\t')
	}
	l.cols++
}

// text appends a string column; "" is NULL when null is true.
func (l *Line) text(s string, nullIfEmpty bool) {
	l.Sep()
	if s == "" && nullIfEmpty {
		l.B = append(l.B, '\\', 'N')
		return
	}
	// Most values need no escape: copy them whole.
	if !needsEscape(s) {
		l.B = append(l.B, s...)
		return
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			l.B = append(l.B, '\\', '\\')
		case '\t':
			l.B = append(l.B, '\\', 't')
		case '\n':
			l.B = append(l.B, '\\', 'n')
		case '\r':
			l.B = append(l.B, '\\', 'r')
		default:
			l.B = append(l.B, c)
		}
	}
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '\t' || c == '\n' || c == '\r' {
			return true
		}
	}
	return false
}

// Str appends a text column.
func (l *Line) Str(s string) { l.text(s, false) }

// Nullable appends a text column that is NULL when s is empty.
func (l *Line) Nullable(s string) { l.text(s, true) }

// Null appends a NULL column.
func (l *Line) Null() {
	l.Sep()
	l.B = append(l.B, '\\', 'N')
}

// Date appends a date column, NULL when zero.
func (l *Line) Date(d date.Date) {
	l.Sep()
	if d == 0 {
		l.B = append(l.B, '\\', 'N')
		return
	}
	l.B = d.AppendISO(l.B)
}

// Int appends an integer column.
func (l *Line) Int(v int64) {
	l.Sep()
	l.B = strconv.AppendInt(l.B, v, 10)
}

// Bool appends a boolean column, NULL when not known.
func (l *Line) Bool(v, known bool) {
	l.Sep()
	switch {
	case !known:
		l.B = append(l.B, '\\', 'N')
	case v:
		l.B = append(l.B, 't')
	default:
		l.B = append(l.B, 'f')
	}
}
