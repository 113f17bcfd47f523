package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// table prints rows as aligned columns, two spaces apart: numbers to the
// right, text to the left. tabwriter aligns every column to the left, so
// the cells of a column of numbers (and its header) are first padded on
// the left to the column's width.
func table(w io.Writer, header []string, rows [][]string) {
	width := make([]int, len(header))
	numeric := make([]bool, len(header))
	for i, h := range header {
		width[i] = utf8.RuneCountInString(h)
		numeric[i] = len(rows) > 0
	}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
			if strings.Trim(c, "0123456789,") != "" {
				numeric[i] = false
			}
		}
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	line := func(cells []string) {
		for i, c := range cells {
			if i > 0 {
				tw.Write([]byte{'\t'})
			}
			if numeric[i] {
				c = fmt.Sprintf("%*s", width[i], c)
			}
			tw.Write([]byte(c))
		}
		tw.Write([]byte{'\n'})
	}
	line(header)
	for _, r := range rows {
		line(r)
	}
	tw.Flush()
	// A last cell that is empty leaves the padding of the one before it.
	for _, l := range strings.SplitAfter(buf.String(), "\n") {
		if l != "" {
			fmt.Fprintln(w, strings.TrimRight(l, " \n"))
		}
	}
}

var english = message.NewPrinter(language.English)

// n formats a count with thousands separators: 1,234,567.
func n(v int64) string { return english.Sprintf("%d", v) }
