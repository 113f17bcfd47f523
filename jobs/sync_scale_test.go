package jobs_test

import (
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/sis/sisdemo"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/store"
)

// generate fills the env's SIS with n demo students.
func (e *env) generate(t testing.TB, n int) sisdemo.Stats {
	t.Helper()
	ctx := context.Background()
	if err := sisdemo.CreateSchema(ctx, e.sisDB.DB); err != nil {
		t.Fatal(err)
	}
	st, err := sisdemo.Generate(ctx, e.sisDB.DB, sisdemo.Options{Students: n, Seed: 42, AsOf: asOf})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sisDB.Exec(`VACUUM ANALYZE`); err != nil {
		t.Fatal(err)
	}
	return st
}

// Acceptance: a generated 100,000-student SIS synced twice changes nothing
// the second time; 10 changed passports are exactly 10 changes.
func TestSync100kTwiceThenTenPassports(t *testing.T) {
	testenv.Long(t, "100,000 students: not in -short")
	e := newEnv(t)
	st := e.generate(t, 100_000)
	first := e.sync(t)
	if c := first.Tables[store.EntityStudent]; c.Read != 100_000 || c.New != 100_000 {
		t.Fatalf("first sync: %+v", c)
	}
	if c := first.Tables[store.EntityTravel]; c.New != int64(st.TravelRequests) {
		t.Fatalf("first sync travel: %+v, generated %d", c, st.TravelRequests)
	}
	if second := e.sync(t); second.Changed() != 0 {
		t.Fatalf("second sync of an unchanged SIS: %d changes (%+v)", second.Changed(), second.Tables)
	}
	e.exec(t, `UPDATE sis.students SET passport_expires_on = coalesce(passport_expires_on, DATE '2030-01-01') + 400
		WHERE student_id IN (SELECT student_id FROM sis.students ORDER BY md5(student_id) LIMIT 10)`)
	third := e.sync(t)
	if got := third.Changed(); got != 10 || third.Tables[store.EntityStudent].Changed != 10 {
		t.Fatalf("after changing 10 passports: %d changes (%+v), want exactly those 10", got, third.Tables)
	}
	var n int
	if err := e.db.Get(&n, `SELECT count(*) FROM sisnotify.students WHERE passport_changed_at >= (SELECT started_at FROM sisnotify.syncs ORDER BY sync_id DESC LIMIT 1)`); err != nil || n != 10 {
		t.Fatalf("%d students have a new passport_changed_at (%v), want 10", n, err)
	}
}

// BenchmarkSync syncs a generated SIS (1,000,000 students by default;
// SISNOTIFY_BENCH_STUDENTS to change) and reports, next to the plain read
// of the same tables measured in the same run (COPY (SELECT * FROM t) TO
// STDOUT): the initial load, an unchanged night and a night with 10
// changes, with rows/s and peak RSS.
//
//	make bench-sync
func BenchmarkSync(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("SISNOTIFY_BENCH_STUDENTS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	e := newEnv(b)
	gen := time.Now()
	st := e.generate(b, n)
	rows := int64(st.Students + st.TravelRequests + st.Faculties + st.AcademicPeriods)
	b.Logf("generated %d students, %d travel requests in %s", st.Students, st.TravelRequests, time.Since(gen).Round(time.Millisecond))

	raw := func() time.Duration {
		start := time.Now()
		var bytes int64
		err := sis.NewReader(e.sisURL).Read(ctx, func(ctx context.Context, s *sis.Snapshot) error {
			for _, t := range []sis.Table{sis.Faculties, sis.AcademicPeriods, sis.Students, sis.TravelRequests} {
				n, err := s.CopyPlain(ctx, t, io.Discard)
				if err != nil {
					return err
				}
				bytes += n
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	phase := func(name string, rawD time.Duration) (time.Duration, jobs.SyncResult) {
		runtime.GC()
		testenv.ResetPeakRSS()
		start := time.Now()
		res := e.sync(b)
		d := time.Since(start)
		peak := testenv.PeakRSS()
		ratio := d.Seconds() / rawD.Seconds()
		b.Logf("%-18s %8s  %9.0f rows/s  changed %7d  ratio to the plain read %.2f  peak RSS %d MiB",
			name, d.Round(time.Millisecond), float64(rows)/d.Seconds(), res.Changed(), ratio, peak>>20)
		unit := strings.ReplaceAll(name, " ", "-")
		b.ReportMetric(ratio, unit+"-ratio")
		b.ReportMetric(float64(peak>>20), unit+"-peak-MiB")
		return d, res
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 {
			b.Fatal("run with -benchtime 1x")
		}
		raw() // warm the SIS's cache, as a nightly read would find it
		rawD := raw()
		b.Logf("plain read of the same rows: %s (%.0f rows/s)", rawD.Round(time.Millisecond), float64(rows)/rawD.Seconds())
		b.ReportMetric(float64(rows)/rawD.Seconds(), "plain-rows/s")
		phase("initial load", rawD)
		rawD = raw()
		d, res := phase("unchanged night", rawD)
		if res.Changed() != 0 {
			b.Fatalf("unchanged night changed %d rows", res.Changed())
		}
		b.ReportMetric(float64(rows)/d.Seconds(), "unchanged-rows/s")
		e.exec(b, `UPDATE sis.students SET passport_expires_on = coalesce(passport_expires_on, DATE '2030-01-01') + 400
			WHERE student_id IN (SELECT student_id FROM sis.students ORDER BY md5(student_id) LIMIT 10)`)
		rawD = raw()
		if _, res := phase("10 changes", rawD); res.Changed() != 10 {
			b.Fatalf("10 changes reported as %d", res.Changed())
		}
	}
}
