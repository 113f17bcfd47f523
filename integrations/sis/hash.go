package sis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
)

// HashVersion names how the SIS computes row hashes (Snapshot.Hashes and
// the hashed streams). A change of the expression must change it: the
// snapshot then takes every row for changed once.
const HashVersion = "sis-row-hash-v1"

// A hashed stream (StreamHashed, StreamSince, StreamKeys, Hashes) has the
// SIS compute a 64-bit hash of every row, so that an unchanged row can be
// recognised from its key and hash alone, without sending its columns.
// The hash covers every column of the table but updated_at, each hashed
// by PostgreSQL's own 64-bit hash functions (hashtextextended,
// hashint4extended; PostgreSQL 11 or later) with a seed of its own, NULL
// standing for a constant of its own, the columns' hashes combined by
// XOR. Text columns are hashed as they are, dates as day numbers, and
// any other type as its text (the text the reader receives). No column
// is cast to text when its type is text or date: that is what would
// cost the SIS as much as sending it.

// hashExpr is the SQL expression of t's row hash.
func (s *Snapshot) hashExpr(ctx context.Context, t Table) (string, error) {
	if !s.canHash {
		return "", fmt.Errorf("read %s: %w", t.Name, errNoHashes)
	}
	if e, ok := s.hashExprs[t.Name]; ok {
		return e, nil
	}
	rr := s.conn.ExecParams(ctx, `
		SELECT a.attname, t.typname
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`,
		[][]byte{[]byte(t.Name)}, nil, nil, nil)
	res := rr.Read()
	if res.Err != nil {
		return "", fmt.Errorf("read %s: column types: %w", t.Name, res.Err)
	}
	types := make(map[string]string, len(res.Rows))
	for _, r := range res.Rows {
		types[string(r[0])] = string(r[1])
	}
	parts := make([]string, 0, len(t.Columns))
	for _, c := range t.Columns {
		if c == t.UpdatedAt() {
			continue
		}
		parts = append(parts, hashTerm(t.Name, c, types[c]))
	}
	e := strings.Join(parts, " # ")
	if s.hashExprs == nil {
		s.hashExprs = map[string]string{}
	}
	s.hashExprs[t.Name] = e
	return e, nil
}

// hashTerm is one column's part of the row hash: its value's hash with
// the column's own seed, or the column's NULL constant. A column the
// catalog does not list (typ "") is hashed as text: the read then fails
// on it and says which column the SIS lacks.
func hashTerm(table, col, typ string) string {
	seed, null := hashSeed(table, col, "value"), hashSeed(table, col, "null")
	q := pgIdent(col)
	var v string
	switch typ {
	case "text", "varchar":
		v = fmt.Sprintf("hashtextextended(%s, %d)", q, seed)
	case "date":
		// Infinite dates have no day number.
		v = fmt.Sprintf("CASE WHEN isfinite(%[1]s) THEN hashint4extended(%[1]s - DATE '2000-01-01', %[2]d) ELSE hashtextextended(%[1]s::text, %[2]d) END", q, seed)
	default:
		v = fmt.Sprintf("hashtextextended(%s::text, %d)", q, seed)
	}
	return fmt.Sprintf("coalesce(%s, %d)", v, null)
}

// hashSeed is a constant of the hash version, table, column and use.
func hashSeed(table, col, use string) int64 {
	return int64(xxhash.Sum64String(HashVersion + "\x00" + table + "\x00" + col + "\x00" + use))
}

// pgIdent quotes a column name when it needs it.
func pgIdent(s string) string {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
		}
	}
	return s
}

// CanHash reports whether the SIS computes row hashes: its server has
// the hash functions (PostgreSQL 11 or later) and the Reader does not
// forbid it (NoHashes). Without it, StreamHashed, Hashes and StreamKeys
// fail, and StreamSince gives rows without their hash.
func (s *Snapshot) CanHash() bool { return s.canHash }

// errNoHashes is returned by the hashed reads of a SIS that cannot hash.
var errNoHashes = errors.New("the SIS cannot compute row hashes (PostgreSQL 11 or later has the functions)")

// StreamHashed is Stream with each row's hash (Row.Hash), computed by the
// SIS.
func (s *Snapshot) StreamHashed(ctx context.Context, t Table, fn func(*Row) error) error {
	return s.stream(ctx, t, "", &t, fn)
}

// StreamSince reads the rows of t whose updated_at is since or later, with
// their hash when the SIS can hash (CanHash). t must have the column
// (Table.UpdatedAt).
func (s *Snapshot) StreamSince(ctx context.Context, t Table, since time.Time, fn func(*Row) error) error {
	col := t.UpdatedAt()
	if col == "" {
		return fmt.Errorf("read %s: the table has no updated_at", t.Name)
	}
	// A literal, as COPY takes no parameters: written from a time.Time,
	// it holds nothing but digits and separators.
	var hashOf *Table
	if s.canHash {
		hashOf = &t
	}
	return s.stream(ctx, t, col+" >= '"+since.UTC().Format("2006-01-02 15:04:05.999999")+"+00'::timestamptz", hashOf, fn)
}

// Hashes reads t's keys and row hashes in key order: rows of one column,
// the key, with Row.Hash. It is what a reader that keeps the hashes needs
// to find the rows that changed, at a fraction of the bytes of the rows.
func (s *Snapshot) Hashes(ctx context.Context, t Table, fn func(*Row) error) error {
	return s.stream(ctx, Table{Name: t.Name, Columns: t.Columns[:1]}, "", &t, fn)
}

// StreamKeys is StreamHashed for the rows whose key is one of keys, which
// must be in key order and not empty.
func (s *Snapshot) StreamKeys(ctx context.Context, t Table, keys []string, fn func(*Row) error) error {
	// COPY takes no parameters: the keys go in as one array literal,
	// every element quoted, in a standard string literal.
	var b strings.Builder
	b.WriteString(pgIdent(t.Columns[0]))
	b.WriteString(" = ANY ('{")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for _, c := range []byte(k) {
			switch c {
			case '"', '\\':
				b.WriteByte('\\')
			case '\'':
				b.WriteByte('\'')
			}
			b.WriteByte(c)
		}
		b.WriteByte('"')
	}
	b.WriteString("}')")
	return s.stream(ctx, t, b.String(), &t, fn)
}

// Hash is the row's hash as the SIS computed it, in a hashed stream.
func (r *Row) Hash() uint64 { return r.hash }

// Hashed reports whether the row came with its hash (Hash).
func (r *Row) Hashed() bool { return r.hashed }

// parseHash reads the hash column: a bigint in decimal.
func parseHash(b []byte) (uint64, bool) {
	v, err := strconv.ParseInt(string(b), 10, 64)
	return uint64(v), err == nil
}
