// Package sis reads the university Student Information System: the four
// tables of the reference schema (reference-schema.sql beside this file: the
// contract a university's SIS maps its tables onto), in one consistent read-only snapshot.
//
// Every table is streamed with COPY ... TO STDOUT inside a single
// REPEATABLE READ, READ ONLY transaction, ordered by its key in byte order
// (by the key's own collation when that is byte order, else COLLATE "C"),
// so a reader can merge it against its own copy row by row and memory
// does not grow with the roster. The worker never writes to the
// SIS; it needs a role with SELECT on these four tables (or views with these
// names and columns) and nothing else.
//
// The stream uses pgx's pgconn because lib/pq, the driver of the worker's own
// database, cannot run COPY TO; COPY is what makes the read as fast as the
// server can produce rows.
package sis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Table names one SIS table (or view) and the columns read from it, in the
// order a Row holds them. Key is the first column.
type Table struct {
	Name    string
	Columns []string
}

// The four tables of the reference schema.
var (
	Faculties = Table{"sis.faculties", []string{
		"faculty_id", "name", "dean_name", "dean_email", "dean_language"}}
	Students = Table{"sis.students", []string{
		"student_id", "given_name", "family_name", "email", "phone",
		"preferred_language", "citizenship", "visa_regime", "faculty_id",
		"enrollment_status", "passport_number", "passport_expires_on",
		"planned_entry_on", "invitation_docs_on", "entered_on",
		"office_check_in_on", "registered_on", "registration_expires_on",
		"extension_requested_on", "moved_on", "address_registered_on",
		"updated_at"}}
	TravelRequests = Table{"sis.travel_requests", []string{
		"request_id", "student_id", "kind", "submitted_on", "departure_on",
		"return_on", "dean_decision", "reason", "exit_visa_ready", "departed_on",
		"returned_on", "return_check_in_on", "cancelled", "updated_at"}}
	AcademicPeriods = Table{"sis.academic_periods", []string{
		"period_id", "kind", "starts_on", "ends_on"}}
)

// Column positions in a Row of Faculties.
const (
	FacultyID = iota
	FacultyName
	FacultyDeanName
	FacultyDeanEmail
	FacultyDeanLanguage
)

// Column positions in a Row of Students.
const (
	StudentID = iota
	StudentGivenName
	StudentFamilyName
	StudentEmail
	StudentPhone
	StudentPreferredLanguage
	StudentCitizenship
	StudentVisaRegime
	StudentFacultyID
	StudentEnrollmentStatus
	StudentPassportNumber
	StudentPassportExpiresOn
	StudentPlannedEntryOn
	StudentInvitationDocsOn
	StudentEnteredOn
	StudentOfficeCheckInOn
	StudentRegisteredOn
	StudentRegistrationExpiresOn
	StudentExtensionRequestedOn
	StudentMovedOn
	StudentAddressRegisteredOn
	StudentUpdatedAt
)

// Column positions in a Row of TravelRequests.
const (
	TravelRequestID = iota
	TravelStudentID
	TravelKind
	TravelSubmittedOn
	TravelDepartureOn
	TravelReturnOn
	TravelDeanDecision
	TravelReason // the student's stated reason; free text, may be NULL
	TravelExitVisaReady
	TravelDepartedOn
	TravelReturnedOn
	TravelReturnCheckInOn
	TravelCancelled
	TravelUpdatedAt
)

// Column positions in a Row of AcademicPeriods.
const (
	PeriodID = iota
	PeriodKind
	PeriodStartsOn
	PeriodEndsOn
)

// UpdatedAt is the column of t that says when a row last changed
// (updated_at), or "" when t has none (faculties, academic periods).
func (t Table) UpdatedAt() string {
	if c := t.Columns[len(t.Columns)-1]; c == "updated_at" {
		return c
	}
	return ""
}

// selectOrdered is the query that reads t: every column as text (dates
// as YYYY-MM-DD), ordered by the key, COLLATE "C" when collateC is set,
// else by the key's own collation: the same byte order when that
// collation sorts as bytes do (Snapshot.byteOrdered), and then the key's
// index can serve it without a sort. where, when not empty, is the
// query's WHERE clause; hash, when not empty, a last column (the row
// hash).
func (t Table) selectOrdered(collateC bool, where, hash string) string {
	cols := make([]string, len(t.Columns), len(t.Columns)+1)
	for i, c := range t.Columns {
		cols[i] = c + "::text"
	}
	if hash != "" {
		cols = append(cols, hash)
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM " + t.Name
	if where != "" {
		q += " WHERE " + where
	}
	q += " ORDER BY " + t.Columns[0]
	if collateC {
		q += ` COLLATE "C"`
	}
	return q
}

// Row is one row of a table as text. Its slices are valid only until the
// callback that received it returns; copy what must outlive it.
//
// Columns are offsets into one buffer, not slices of their own, so that
// copying a row (CopyTo, for every changed row of a sync) is two copies of
// plain memory.
type Row struct {
	data  []byte  // the columns' bytes: the COPY line, or its unescaped copy
	start []int32 // column i is data[start[i]:end[i]]
	end   []int32
	null  []bool
	line  int64
	buf   []byte // the memory of a copy (CopyTo)
	// hashed: the last column is the row's hash (hash), not one of
	// the table's.
	hashed bool
	hash   uint64
}

// newRow returns an empty Row of ncols columns.
func newRow(ncols int) Row {
	return Row{start: make([]int32, ncols), end: make([]int32, ncols), null: make([]bool, ncols)}
}

// Len is the number of columns.
func (r *Row) Len() int {
	if r.hashed {
		return len(r.null) - 1
	}
	return len(r.null)
}

// Null reports whether column i is NULL.
func (r *Row) Null(i int) bool { return r.null[i] }

// Bytes returns column i as text; nil when NULL.
func (r *Row) Bytes(i int) []byte {
	if r.null[i] {
		return nil
	}
	return r.data[r.start[i]:r.end[i]:r.end[i]]
}

// String returns column i as a new string ("" when NULL).
func (r *Row) String(i int) string { return string(r.Bytes(i)) }

// Number is the 1-based position of the row in its stream.
func (r *Row) Number() int64 { return r.line }

// Reader opens read-only snapshots of the SIS.
type Reader struct {
	url string
	// CollateC, when set, always orders by the key COLLATE "C", even
	// when the key's own collation seems to sort as bytes do.
	CollateC bool
	// NoHashes, when set, never has the SIS hash rows, as on a server
	// without the hash functions (Snapshot.CanHash).
	NoHashes bool
}

// NewReader returns a Reader for the SIS at url (a PostgreSQL URL).
func NewReader(url string) *Reader { return &Reader{url: url} }

// Snapshot is one consistent, read-only view of the SIS. Every Stream of a
// Snapshot sees the same data, whatever is written to the SIS meanwhile.
type Snapshot struct {
	conn     *pgconn.PgConn
	collateC bool
	began    time.Time
	// hashExprs are the tables' row hash expressions, by table name.
	hashExprs map[string]string
	// canHash: the server can hash rows (CanHash).
	canHash bool
}

// Read connects, opens a REPEATABLE READ READ ONLY transaction, hands it to
// fn and ends it. The transaction is never committed with changes: it
// cannot make any.
func (r *Reader) Read(ctx context.Context, fn func(ctx context.Context, s *Snapshot) error) error {
	conn, err := pgconn.Connect(ctx, r.url)
	if err != nil {
		return fmt.Errorf("connect to the SIS: %w", redact(err))
	}
	defer conn.Close(context.Background())
	// JIT would compile the reads' expressions on every night's new
	// connection (loading LLVM first) to save less than it costs on a
	// stream of plain columns. A server older than JIT (before 11) has no
	// such setting, and is left as it is.
	if err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL datestyle = 'ISO, YMD'; SET LOCAL standard_conforming_strings = on; "+
		"SELECT set_config('jit', 'off', true) WHERE current_setting('jit', true) IS NOT NULL").Close(); err != nil {
		return fmt.Errorf("begin SIS snapshot: %w", err)
	}
	// The clock in binary: an instant, whatever the session's time zone.
	// And whether the server has the 64-bit hash functions (PostgreSQL
	// 11 or later) that row hashes need.
	var began time.Time
	res := conn.ExecParams(ctx, `SELECT now(), to_regproc('pg_catalog.hashtextextended') IS NOT NULL AND to_regproc('pg_catalog.hashint4extended') IS NOT NULL`,
		nil, nil, nil, []int16{pgtype.BinaryFormatCode}).Read()
	err = res.Err
	if err == nil && (len(res.Rows) != 1 || len(res.Rows[0]) != 2 || len(res.Rows[0][1]) != 1) {
		err = errors.New("no row")
	}
	if err == nil {
		err = pgtype.NewMap().Scan(pgtype.TimestamptzOID, pgtype.BinaryFormatCode, res.Rows[0][0], &began)
	}
	if err != nil {
		_ = conn.Exec(context.Background(), "ROLLBACK").Close()
		return fmt.Errorf("begin SIS snapshot: clock: %w", err)
	}
	canHash := res.Rows[0][1][0] == 1 && !r.NoHashes
	if err := fn(ctx, &Snapshot{conn: conn, collateC: r.CollateC, began: began, canHash: canHash}); err != nil {
		_ = conn.Exec(context.Background(), "ROLLBACK").Close()
		return err
	}
	if err := conn.Exec(ctx, "COMMIT").Close(); err != nil {
		return fmt.Errorf("end SIS snapshot: %w", err)
	}
	return nil
}

// redact keeps a connection error from carrying the URL's password: pgconn
// errors name host and user but a wrapped parse error may quote the URL.
func redact(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("SISNOTIFY_SIS_URL is not a valid PostgreSQL URL")
	}
	return err
}

// SQLSTATEs of a SIS that lacks a column or a table of the contract.
const (
	undefinedColumn = "42703"
	undefinedTable  = "42P01"
)

// ErrOrder is returned when a table's rows do not arrive in key order (a
// mapped view that ignores ORDER BY, or a key with a different collation).
var ErrOrder = errors.New("rows out of key order")

// Stream reads every row of t and calls fn for each, in key order. A row
// whose column count is wrong stops the stream with an error: the table
// does not match the reference schema.
func (s *Snapshot) Stream(ctx context.Context, t Table, fn func(*Row) error) error {
	return s.stream(ctx, t, "", nil, fn)
}

// Keys counts the rows of t that have a key (the rows a full Stream
// would give a reader, duplicates included).
func (s *Snapshot) Keys(ctx context.Context, t Table) (int64, error) {
	res := s.conn.ExecParams(ctx, "SELECT count(*) FROM "+t.Name+" WHERE "+t.Columns[0]+" <> ''", nil, nil, nil, nil).Read()
	if res.Err != nil {
		return 0, fmt.Errorf("count %s: %w", t.Name, res.Err)
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return 0, fmt.Errorf("count %s: no count", t.Name)
	}
	n, err := strconv.ParseInt(string(res.Rows[0][0]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", t.Name, err)
	}
	return n, nil
}

// Began is the SIS's clock when the snapshot's transaction began: every
// change committed before it is in the snapshot. A change committed
// after it carries an updated_at of its own transaction's start, which
// may be earlier (a reader of changes since Began reads back a margin).
func (s *Snapshot) Began() time.Time { return s.began }

// stream runs t's COPY with the WHERE clause where (none when empty),
// and with the row hash of hashOf (usually t itself) as a last column
// when hashOf is set.
func (s *Snapshot) stream(ctx context.Context, t Table, where string, hashOf *Table, fn func(*Row) error) error {
	var hash string
	if hashOf != nil {
		var err error
		if hash, err = s.hashExpr(ctx, *hashOf); err != nil {
			return err
		}
	}
	q, err := s.copyQuery(ctx, t, where, hash)
	if err != nil {
		return err
	}
	ncols := len(t.Columns)
	if hashOf != nil {
		ncols++
	}
	w := &rowWriter{fn: fn, row: newRow(ncols), hashed: hashOf != nil}
	w.row.hashed = w.hashed
	if _, err := s.conn.CopyTo(ctx, w, q); err != nil {
		if w.err != nil {
			return w.err
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) && (pe.Code == undefinedColumn || pe.Code == undefinedTable) {
			return fmt.Errorf("read %s: %w (the SIS must offer every table and column of the reference schema; a view can supply a column the SIS does not keep as NULL)", t.Name, err)
		}
		return fmt.Errorf("read %s: %w", t.Name, err)
	}
	if len(w.partial) > 0 {
		return fmt.Errorf("read %s: stream ended inside a row", t.Name)
	}
	return nil
}

// copyQuery is the COPY that reads t in key order: by the key's own
// collation when it sorts as bytes do, else COLLATE "C".
func (s *Snapshot) copyQuery(ctx context.Context, t Table, where, hash string) (string, error) {
	collateC := s.collateC
	if !collateC {
		bytewise, err := s.byteOrdered(ctx, t)
		if err != nil {
			return "", err
		}
		collateC = !bytewise
	}
	return "COPY (" + t.selectOrdered(collateC, where, hash) + ") TO STDOUT", nil
}

// byteOrdered reports whether t's key column has a collation that sorts
// as bytes do: "C" or "POSIX", or glibc's "C.UTF-8" (code point order,
// which in UTF-8 is byte order), of the libc provider. Then ORDER BY the
// key needs no COLLATE "C", and the key's index (the primary key's, on a
// table) gives the rows in order without a sort: a fifth to a third less
// time than the sorted read on a million students. Were the judgement wrong, the
// caller's order check stops the sync (the snapshot's ErrOrder), and a
// Reader with CollateC reads in byte order regardless.
//
// The catalog is read through to_jsonb where a column is younger than the
// servers a SIS may still run (collprovider: PostgreSQL 10,
// datlocprovider: 15), which then count as libc's.
func (s *Snapshot) byteOrdered(ctx context.Context, t Table) (bool, error) {
	rr := s.conn.ExecParams(ctx, `
		SELECT coalesce(c.collcollate, ''), coalesce(to_jsonb(c)->>'collprovider', 'c'), a.attcollation = 100,
		       d.datcollate, coalesce(to_jsonb(d)->>'datlocprovider', 'c')
		FROM pg_attribute a
		LEFT JOIN pg_collation c ON c.oid = a.attcollation
		JOIN pg_database d ON d.datname = current_database()
		WHERE a.attrelid = $1::regclass AND a.attname = $2 AND NOT a.attisdropped`,
		[][]byte{[]byte(t.Name), []byte(t.Columns[0])}, nil, nil, nil)
	res := rr.Read()
	if res.Err != nil {
		var pe *pgconn.PgError
		if errors.As(res.Err, &pe) && pe.Code == undefinedTable {
			return false, fmt.Errorf("read %s: %w (the SIS must offer every table and column of the reference schema)", t.Name, res.Err)
		}
		return false, fmt.Errorf("read %s: key collation: %w", t.Name, res.Err)
	}
	if len(res.Rows) != 1 {
		return false, nil // no such column: the read itself will say so
	}
	r := res.Rows[0]
	collate, provider := string(r[0]), string(r[1])
	if string(r[2]) == "t" { // the database's default collation
		collate, provider = string(r[3]), string(r[4])
	}
	if provider != "c" {
		return false, nil
	}
	switch collate {
	case "C", "POSIX", "C.UTF-8", "C.utf8":
		return true, nil
	}
	return false, nil
}

// rowWriter receives COPY data (PostgreSQL sends one row per message, but
// nothing here relies on it), splits it into rows and decodes each field
// in place.
type rowWriter struct {
	fn      func(*Row) error
	row     Row
	partial []byte
	scratch []byte
	err     error
	hashed  bool // the last column is the row hash
}

func (w *rowWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(w.partial) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			return n, nil
		}
		w.partial = append(w.partial, p[:i]...)
		if err := w.line(w.partial); err != nil {
			return 0, err
		}
		w.partial = w.partial[:0]
		p = p[i+1:]
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			break
		}
		if err := w.line(p[:i]); err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	return n, nil
}

func (w *rowWriter) line(b []byte) error {
	r := &w.row
	r.line++
	ncols := len(r.null)
	// Columns are read in place, until one holds an escape: from there on
	// they are decoded into scratch, which starts with a copy of the line
	// so far, so the offsets of the columns before stay good.
	inScratch := false
	col, pos := 0, 0
	for {
		end := len(b)
		tab := bytes.IndexByte(b[pos:], '\t')
		if tab >= 0 {
			end = pos + tab
		}
		if col >= ncols {
			w.err = fmt.Errorf("row %d: more columns than the %d expected", r.line, ncols)
			return w.err
		}
		f := b[pos:end]
		switch {
		case len(f) == 2 && f[0] == '\\' && f[1] == 'N':
			r.start[col], r.end[col], r.null[col] = 0, 0, true
		case inScratch || bytes.IndexByte(f, '\\') >= 0:
			if !inScratch {
				w.scratch = append(w.scratch[:0], b[:pos]...)
				inScratch = true
			}
			from := len(w.scratch)
			w.scratch = unescape(w.scratch, f)
			r.start[col], r.end[col], r.null[col] = int32(from), int32(len(w.scratch)), false
		default:
			r.start[col], r.end[col], r.null[col] = int32(pos), int32(end), false
		}
		col++
		if tab < 0 {
			break
		}
		pos = end + 1
	}
	if col != ncols {
		w.err = fmt.Errorf("row %d: %d columns, want %d", r.line, col, ncols)
		return w.err
	}
	r.data = b
	if inScratch {
		r.data = w.scratch
	}
	if w.hashed {
		h, ok := parseHash(r.data[r.start[ncols-1]:r.end[ncols-1]])
		if !ok || r.null[ncols-1] {
			w.err = fmt.Errorf("row %d: no row hash", r.line)
			return w.err
		}
		r.hash = h
	}
	if err := w.fn(r); err != nil {
		w.err = err
		return err
	}
	return nil
}

// unescape decodes COPY text escapes (\t \n \r \b \f \v \\, octal \ooo and
// hex \xhh) of f onto dst.
func unescape(dst, f []byte) []byte {
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' || i+1 == len(f) {
			dst = append(dst, c)
			continue
		}
		i++
		switch c = f[i]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'v':
			dst = append(dst, '\v')
		case 'x':
			v, k := 0, 0
			for k < 2 && i+1 < len(f) && isHex(f[i+1]) {
				i++
				v = v*16 + hexVal(f[i])
				k++
			}
			if k == 0 {
				dst = append(dst, 'x')
			} else {
				dst = append(dst, byte(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for k := 0; k < 2 && i+1 < len(f) && f[i+1] >= '0' && f[i+1] <= '7'; k++ {
				i++
				v = v*8 + int(f[i]-'0')
			}
			dst = append(dst, byte(v))
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
}

// CopyRaw runs the COPY that a full read of t runs (StreamHashed for a
// table with updated_at when the SIS can hash, else Stream) into w without decoding
// anything: what the sync's read costs the SIS, for a benchmark. It
// returns the bytes read.
func (s *Snapshot) CopyRaw(ctx context.Context, t Table, w io.Writer) (int64, error) {
	var hash string
	if t.UpdatedAt() != "" && s.canHash {
		var err error
		if hash, err = s.hashExpr(ctx, t); err != nil {
			return 0, err
		}
	}
	q, err := s.copyQuery(ctx, t, "", hash)
	if err != nil {
		return 0, err
	}
	cw := &countingWriter{w: w}
	if _, err := s.conn.CopyTo(ctx, cw, q); err != nil {
		return cw.n, fmt.Errorf("read %s: %w", t.Name, err)
	}
	return cw.n, nil
}

// CopyPlain runs COPY (SELECT * FROM <t.Name>) TO STDOUT into w: t's rows
// as the server stores them, with no ORDER BY and no casts. It is the
// benchmark's baseline (make bench), the least a read of the SIS can cost;
// the sync never runs it. It returns the bytes read.
func (s *Snapshot) CopyPlain(ctx context.Context, t Table, w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	if _, err := s.conn.CopyTo(ctx, cw, "COPY (SELECT * FROM "+t.Name+") TO STDOUT"); err != nil {
		return cw.n, fmt.Errorf("read %s: %w", t.Name, err)
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.w.Write(p)
}

// CopyTo makes dst a deep copy of r that outlives the stream's callback,
// reusing dst's memory, and returns dst.
func (r *Row) CopyTo(dst *Row) *Row {
	dst.buf = append(dst.buf[:0], r.data...)
	dst.data = dst.buf
	dst.start = append(dst.start[:0], r.start...)
	dst.end = append(dst.end[:0], r.end...)
	dst.null = append(dst.null[:0], r.null...)
	dst.line, dst.hashed, dst.hash = r.line, r.hashed, r.hash
	return dst
}
