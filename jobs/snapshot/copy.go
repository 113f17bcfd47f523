package snapshot

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// copyIn streams pre-encoded COPY text lines into one table over a
// connection, through lib/pq's CopyData (no per-value conversion).
type copyIn struct {
	stmt driver.Stmt
	data interface {
		CopyData(ctx context.Context, line string) (driver.Result, error)
	}
	rows int64
}

// startCopy begins COPY table (cols) FROM STDIN on conn, which must be in a
// transaction begun with plain SQL (BEGIN) so Raw sees the same session.
func startCopy(ctx context.Context, conn *sql.Conn, table string, cols string) (*copyIn, error) {
	c := &copyIn{}
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
func (c *copyIn) Line(ctx context.Context, line []byte) error {
	c.rows++
	_, err := c.data.CopyData(ctx, string(line))
	return err
}

// Finish ends the COPY and reports any error of the rows sent.
func (c *copyIn) Finish() error {
	//lint:ignore SA1019 Exec(nil) is how lib/pq ends a COPY.
	_, err := c.stmt.Exec(nil) //nolint:staticcheck
	cerr := c.stmt.Close()
	if err != nil {
		return err
	}
	return cerr
}

// line builds one COPY text row.
type line struct {
	b    []byte
	cols int
}

func (l *line) reset() { l.b, l.cols = l.b[:0], 0 }

func (l *line) sep() {
	if l.cols > 0 {
		l.b = append(l.b, '\t')
	}
	l.cols++
}

// text appends a string column; "" is NULL when null is true.
func (l *line) text(s string, nullIfEmpty bool) {
	l.sep()
	if s == "" && nullIfEmpty {
		l.b = append(l.b, '\\', 'N')
		return
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			l.b = append(l.b, '\\', '\\')
		case '\t':
			l.b = append(l.b, '\\', 't')
		case '\n':
			l.b = append(l.b, '\\', 'n')
		case '\r':
			l.b = append(l.b, '\\', 'r')
		default:
			l.b = append(l.b, c)
		}
	}
}

func (l *line) str(s string)      { l.text(s, false) }
func (l *line) nullable(s string) { l.text(s, true) }

func (l *line) date(d date.Date) {
	l.sep()
	if d == 0 {
		l.b = append(l.b, '\\', 'N')
		return
	}
	l.b = d.AppendISO(l.b)
}

func (l *line) int(v int64) {
	l.sep()
	l.b = strconv.AppendInt(l.b, v, 10)
}

func (l *line) boolean(v, known bool) {
	l.sep()
	switch {
	case !known:
		l.b = append(l.b, '\\', 'N')
	case v:
		l.b = append(l.b, 't')
	default:
		l.b = append(l.b, 'f')
	}
}
