package pgcopy_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store/internal/pgcopy"
)

// benchRows is how many student-like rows one iteration copies.
const benchRows = 200_000

// BenchmarkCopy copies rows shaped like the snapshot's students (8 text
// columns, 10 dates, a timestamp, 2 bigints) into a temporary table, as
// this package encodes them and as pgx's CopyFrom does from Go values:
// the reason the snapshot encodes its own rows (docs/architecture.md,
// "Dependencies, and why").
//
//	go test -bench Copy -benchmem ./store/internal/pgcopy/
func BenchmarkCopy(b *testing.B) {
	ctx := context.Background()
	conn := pgxConn(b)
	if _, err := conn.ExecContext(ctx, `CREATE TEMP TABLE s (id text, a text, b text, c text, d text, e text, f text, g text,
		d1 date, d2 date, d3 date, d4 date, d5 date, d6 date, d7 date, d8 date, d9 date, d10 date, ts timestamptz, h bigint, k bigint)`); err != nil {
		b.Fatal(err)
	}
	day := date.Of(2026, time.November, 25)
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	ids := make([]string, benchRows)
	for i := range ids {
		ids[i] = "S" + strconv.Itoa(1_000_000+i)
	}
	truncate := func() {
		if _, err := conn.ExecContext(ctx, `TRUNCATE s`); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("pgcopy", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			truncate()
			cp, err := pgcopy.Start(ctx, conn, "s", "id, a, b, c, d, e, f, g, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, ts, h, k")
			if err != nil {
				b.Fatal(err)
			}
			var l pgcopy.Line
			for r := 0; r < benchRows; r++ {
				l.Reset()
				l.Str(ids[r])
				for _, v := range [...]string{"Aigerim", "Suleimenova", "aigerim@example.edu", "+77011234567", "ru", "KZ", "visa"} {
					l.Nullable(v)
				}
				for d := 0; d < 10; d++ {
					l.Date(day.AddDays(d))
				}
				l.Timestamp(at)
				l.Int64(int64(r) * 7919)
				l.Int64(42)
				if err := cp.Row(l.B); err != nil {
					b.Fatal(err)
				}
			}
			if err := cp.Finish(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("pgx-CopyFrom", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			truncate()
			err := conn.Raw(func(dc any) error {
				pc := dc.(*stdlib.Conn).Conn()
				days := make([]time.Time, 10)
				for d := range days {
					days[d] = day.AddDays(d).Time(time.UTC)
				}
				vals := make([]any, 21)
				r := -1
				_, err := pc.CopyFrom(ctx, pgx.Identifier{"s"}, []string{"id", "a", "b", "c", "d", "e", "f", "g", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10", "ts", "h", "k"},
					pgx.CopyFromFunc(func() ([]any, error) {
						if r++; r == benchRows {
							return nil, nil
						}
						vals[0] = ids[r]
						for j, v := range [...]string{"Aigerim", "Suleimenova", "aigerim@example.edu", "+77011234567", "ru", "KZ", "visa"} {
							vals[1+j] = v
						}
						for d := range days {
							vals[8+d] = days[d]
						}
						vals[18], vals[19], vals[20] = at, int64(r)*7919, int64(42)
						return vals, nil
					}))
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}
