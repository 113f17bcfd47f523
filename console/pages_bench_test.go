package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/sis/sisdemo"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/internal/nighttest"
	"github.com/iec-almaty/sisnotify/internal/workerdb"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/migrations"
)

// The pages' benchmarks run on a snapshot of SISNOTIFY_BENCH_STUDENTS
// students (default 20,000), synced and evaluated on the fixture's night
// as main_test.go does; the budget is 200 ms p95 for Today and a student's
// page at 1,000,000. Each reports ns/op and the p95 of its requests
// (p95-ms). SISNOTIFY_BENCH_KEEP=1 keeps the database and logs its name,
// for EXPLAIN ANALYZE by hand.
//
//	SISNOTIFY_BENCH_STUDENTS=1000000 go test -run '^$' -bench Pages -benchtime 200x ./console/

// benchDB builds the benchmarks' database and drops it when b ends
// (unless SISNOTIFY_BENCH_KEEP is set).
func benchDB(b *testing.B) *sqlx.DB {
	b.Helper()
	n := 20000
	if s := os.Getenv("SISNOTIFY_BENCH_STUDENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n <= 0 {
			b.Fatalf("SISNOTIFY_BENCH_STUDENTS=%q", s)
		}
	}
	ctx := context.Background()
	start := time.Now()
	sisDB, err := testenv.Create(ctx, "console_bench_sis", "")
	if err != nil {
		b.Fatal(err)
	}
	defer testenv.Drop(ctx, sisDB.Name)
	sdb := open(b, sisDB.URL)
	if err := sisdemo.CreateSchema(ctx, sdb.DB); err != nil {
		b.Fatal(err)
	}
	if _, err := sisdemo.Generate(ctx, sdb.DB, sisdemo.Options{Students: n, Seed: 3, AsOf: fixtureNight}); err != nil {
		b.Fatal(err)
	}
	d, err := testenv.Create(ctx, "console_bench", "")
	if err != nil {
		b.Fatal(err)
	}
	if os.Getenv("SISNOTIFY_BENCH_KEEP") == "" {
		b.Cleanup(func() { _ = testenv.Drop(context.Background(), d.Name) })
	} else {
		b.Logf("kept: %s", d.URL)
	}
	db := open(b, d.URL)
	if _, err := migrations.Up(ctx, db.DB); err != nil {
		b.Fatal(err)
	}
	if _, err := (&jobs.Sync{SIS: sis.NewReader(sisDB.URL), DB: db}).Run(ctx, fixtureNight); err != nil {
		b.Fatal(err)
	}
	if err := nighttest.Evaluate(ctx, db, fixtureNight); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	var open, notices int
	_ = db.QueryRow(`SELECT (SELECT count(*) FROM sisnotify.obligations WHERE closed_at IS NULL), (SELECT count(*) FROM sisnotify.notices)`).Scan(&open, &notices)
	b.Logf("bench database: %d students, %d open obligations, %d notices, built in %s", n, open, notices, time.Since(start).Round(time.Second))
	return db
}

// open is a pool on url, closed when b ends.
func open(b *testing.B, url string) *sqlx.DB {
	db, err := workerdb.Open(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// benchPage requests path b.N times as the office and reports the p95.
func benchPage(b *testing.B, db *sqlx.DB, path string) {
	h := newTestConsole(b, db)
	// Warm the pool and the templates.
	if res, body := get(b, h, path); res.StatusCode != http.StatusOK {
		b.Fatalf("%s: %d\n%s", path, res.StatusCode, body)
	}
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.SetBasicAuth(testUser, testPass)
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		took = append(took, time.Since(start))
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: %d", path, rec.Code)
		}
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
}

// BenchmarkPages builds one snapshot and times the pages on it: Today,
// Today filtered by faculty (the query that joins the roster), and the
// page of the student with the most notices.
func BenchmarkPages(b *testing.B) {
	db := benchDB(b)
	var faculty, id string
	if err := db.Get(&faculty, `SELECT faculty_id FROM sisnotify.faculties ORDER BY faculty_id LIMIT 1`); err != nil {
		b.Fatal(err)
	}
	if err := db.Get(&id, `SELECT student_id FROM sisnotify.notices GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1`); err != nil {
		b.Fatal(err)
	}
	b.Run("TodayPage", func(b *testing.B) { benchPage(b, db, "/console/") })
	b.Run("TodayPageFiltered", func(b *testing.B) { benchPage(b, db, "/console/?overdue=1&faculty="+faculty) })
	b.Run("StudentPage", func(b *testing.B) { benchPage(b, db, "/console/students/"+id) })
}
