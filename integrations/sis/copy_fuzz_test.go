package sis

// Fuzz targets of the COPY text decoder (rowWriter). Run one with
//
//	go test ./integrations/sis -run '^$' -fuzz '^FuzzCopyDecode$' -fuzztime 30s

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// cell is one decoded column.
type cell struct {
	v    string
	null bool
}

// decoded is what a rowWriter made of a stream.
type decoded struct {
	rows    [][]cell
	err     string // the error that stopped the stream, "" if none
	partial bool   // the stream ended inside a row
}

// decodeChunks feeds chunks to a fresh rowWriter of ncols columns, as
// pgconn's CopyTo would, stopping at the first error.
func decodeChunks(t *testing.T, ncols int, chunks [][]byte) decoded {
	t.Helper()
	var d decoded
	w := &rowWriter{row: newRow(ncols)}
	w.fn = func(r *Row) error {
		if r.Len() != ncols {
			t.Fatalf("row %d has %d columns, want %d", r.Number(), r.Len(), ncols)
		}
		if r.Number() != int64(len(d.rows)+1) {
			t.Fatalf("row number %d, want %d", r.Number(), len(d.rows)+1)
		}
		row := make([]cell, ncols)
		for i := range row {
			if r.Null(i) && r.Bytes(i) != nil {
				t.Fatalf("row %d column %d is NULL with a value %q", r.Number(), i, r.Bytes(i))
			}
			row[i] = cell{string(r.Bytes(i)), r.Null(i)}
		}
		d.rows = append(d.rows, row)
		return nil
	}
	for _, c := range chunks {
		n, err := w.Write(c)
		if err != nil {
			d.err = err.Error()
			return d
		}
		if n != len(c) {
			t.Fatalf("Write took %d of %d bytes without an error", n, len(c))
		}
	}
	d.partial = len(w.partial) > 0
	return d
}

// chunk cuts data into pieces of cuts[i] % 32 bytes (0 too: an empty
// Write), then the rest in one.
func chunk(data, cuts []byte) [][]byte {
	var out [][]byte
	for _, c := range cuts {
		n := min(int(c)%32, len(data))
		out = append(out, data[:n:n])
		data = data[n:]
	}
	return append(out, data)
}

// refUnescape decodes one field the way PostgreSQL's COPY FROM reads text
// format (CopyReadAttributesText): \b \f \n \r \t \v, up to three octal
// digits, \x and up to two hex digits (\x without one is x), any other
// escaped byte as itself. A backslash that ends the field is kept.
func refUnescape(f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '\\' || i+1 == len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		c := f[i]
		switch {
		case c >= '0' && c <= '7':
			v := int(c - '0')
			for k := 0; k < 2 && i+1 < len(f) && f[i+1] >= '0' && f[i+1] <= '7'; k++ {
				i++
				v = v<<3 + int(f[i]-'0')
			}
			b.WriteByte(byte(v & 0o377))
		case c == 'x' && i+1 < len(f) && hexDigit(f[i+1]) >= 0:
			v := 0
			for k := 0; k < 2 && i+1 < len(f) && hexDigit(f[i+1]) >= 0; k++ {
				i++
				v = v<<4 + hexDigit(f[i])
			}
			b.WriteByte(byte(v))
		case c == 'b':
			b.WriteByte('\b')
		case c == 'f':
			b.WriteByte('\f')
		case c == 'n':
			b.WriteByte('\n')
		case c == 'r':
			b.WriteByte('\r')
		case c == 't':
			b.WriteByte('\t')
		case c == 'v':
			b.WriteByte('\v')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// hexDigit is the value of a hex digit, -1 for another byte.
func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// refDecode is the reference reading of a whole stream: lines end at \n,
// columns at a tab, \N alone is NULL, a line with the wrong number of
// columns stops the stream.
func refDecode(ncols int, data []byte) (rows [][]cell, errRow int, partial bool) {
	lines := strings.Split(string(data), "\n")
	last := lines[len(lines)-1]
	for i, l := range lines[:len(lines)-1] {
		fields := strings.Split(l, "\t")
		if len(fields) != ncols {
			return rows, i + 1, false
		}
		row := make([]cell, ncols)
		for j, f := range fields {
			if f == `\N` {
				row[j] = cell{null: true}
			} else {
				row[j] = cell{v: refUnescape(f)}
			}
		}
		rows = append(rows, row)
	}
	return rows, 0, last != ""
}

func FuzzCopyDecode(f *testing.F) {
	f.Add([]byte("S1\tAnna\t\\N\n"), []byte{1, 2, 3}, uint8(3))
	f.Add([]byte("S1\tA\\tB\\nC\\\\D\t\\x41\\101\\7777\\x\\q\n"), []byte{5, 0, 7}, uint8(3))
	f.Add([]byte("a\tb\nc\n"), []byte{}, uint8(2))                // the second row has one column
	f.Add([]byte("a\tb\tc\td\n"), []byte{2}, uint8(2))            // too many columns
	f.Add([]byte("a\tb\nc\td"), []byte{4, 1}, uint8(2))           // ends inside a row
	f.Add([]byte("\n\n"), []byte{1}, uint8(1))                    // empty rows of one empty column
	f.Add([]byte("\\\t\\\n\\N\t\\\\N\n"), []byte{1, 1}, uint8(2)) // trailing backslashes, \N and \\N
	f.Add([]byte(strings.Repeat("x\\\\y\t", 21)+"z\n"), []byte{31, 31, 31}, uint8(22))
	f.Fuzz(func(t *testing.T, data, cuts []byte, n uint8) {
		ncols := 1 + int(n)%24
		whole := decodeChunks(t, ncols, [][]byte{data})
		if got := decodeChunks(t, ncols, chunk(data, cuts)); !reflect.DeepEqual(got, whole) {
			t.Fatalf("chunks %v decode to\n%+v\nwhole:\n%+v", cuts, got, whole)
		}
		bytewise := make([][]byte, len(data))
		for i := range data {
			bytewise[i] = data[i : i+1 : i+1]
		}
		if got := decodeChunks(t, ncols, bytewise); !reflect.DeepEqual(got, whole) {
			t.Fatalf("byte by byte:\n%+v\nwhole:\n%+v", got, whole)
		}
		rows, errRow, partial := refDecode(ncols, data)
		if !reflect.DeepEqual(whole.rows, rows) && (len(whole.rows) != 0 || len(rows) != 0) {
			t.Fatalf("rows\n%+v\nwant\n%+v", whole.rows, rows)
		}
		switch {
		case errRow > 0 && !strings.HasPrefix(whole.err, fmt.Sprintf("row %d: ", errRow)):
			t.Fatalf("error %q, want one about row %d", whole.err, errRow)
		case errRow == 0 && whole.err != "":
			t.Fatalf("error %q on a well-formed stream", whole.err)
		case whole.partial != partial:
			t.Fatalf("ended inside a row: %v, want %v", whole.partial, partial)
		}
	})
}

// encodeCopy writes rows as PostgreSQL's COPY TO writes text format
// (CopyAttributeOutText): \N for NULL; backslash, \b \f \n \r \t \v
// escaped; every other byte as is. With octal or hex set, every byte is
// written as \ooo or \xhh instead, which COPY FROM accepts too.
func encodeCopy(rows [][]cell, style byte) []byte {
	var b bytes.Buffer
	for _, row := range rows {
		for i, c := range row {
			if i > 0 {
				b.WriteByte('\t')
			}
			if c.null {
				b.WriteString(`\N`)
				continue
			}
			for j := 0; j < len(c.v); j++ {
				x := c.v[j]
				switch {
				case style%3 == 1:
					fmt.Fprintf(&b, `\%03o`, x)
				case style%3 == 2:
					fmt.Fprintf(&b, `\x%02x`, x)
				case x == '\\':
					b.WriteString(`\\`)
				case x == '\b':
					b.WriteString(`\b`)
				case x == '\f':
					b.WriteString(`\f`)
				case x == '\n':
					b.WriteString(`\n`)
				case x == '\r':
					b.WriteString(`\r`)
				case x == '\t':
					b.WriteString(`\t`)
				case x == '\v':
					b.WriteString(`\v`)
				default:
					b.WriteByte(x)
				}
			}
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// FuzzCopyRoundTrip writes arbitrary rows as the server would and checks
// that the decoder gives them back exactly, however the stream is cut.
func FuzzCopyRoundTrip(f *testing.F) {
	f.Add([]byte("S1\x00Anna\x00\x00a@b.kz"), uint64(0b100), uint8(3), []byte{3, 9}, byte(0))
	f.Add([]byte("tab\there\x00new\nline\x00back\\slash\x00\\N\x00\\\\N"), uint64(0), uint8(5), []byte{1}, byte(0))
	f.Add([]byte("\x00\x01\x7f\x80\xff\x00\b\f\v\r"), uint64(0), uint8(2), []byte{}, byte(1))
	f.Add([]byte("Ақжол\x00Сәрсенбайұлы\x00\xd0"), uint64(0), uint8(1), []byte{2, 2, 2}, byte(2))
	f.Fuzz(func(t *testing.T, raw []byte, nulls uint64, n uint8, cuts []byte, style byte) {
		// raw holds the values, separated by NUL bytes, row after row.
		ncols := 1 + int(n)%24
		vals := strings.Split(string(raw), "\x00")
		var rows [][]cell
		for i := 0; i+ncols <= len(vals); i += ncols {
			row := make([]cell, ncols)
			for j := range row {
				k := i + j
				row[j] = cell{v: vals[k]}
				if nulls&(1<<(k%64)) != 0 {
					row[j] = cell{null: true}
				}
			}
			rows = append(rows, row)
		}
		data := encodeCopy(rows, style)
		got := decodeChunks(t, ncols, chunk(data, cuts))
		want := decoded{rows: rows}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q decodes to\n%+v\nwant\n%+v", data, got, want)
		}
	})
}
