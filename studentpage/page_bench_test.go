package studentpage

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/internal/nighttest"
)

// BenchmarkStudentPage opens the page of students with open obligations
// through their links (the token verified, the student and their
// obligations read, the wording rendered). The fixture's 500 students by
// default; SISNOTIFY_BENCH_STUDENTS=N builds a demo SIS of N students and
// its first night first (not timed). It reports ns/op and the p95 of the
// requests (p95-ms).
func BenchmarkStudentPage(b *testing.B) {
	tmpl := dbTemplate
	if v := os.Getenv("SISNOTIFY_BENCH_STUDENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("SISNOTIFY_BENCH_STUDENTS=%q: want a number", v)
		}
		f, err := nighttest.New(context.Background(), "studentpage_bench", n, 5, fixtureNight)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(f.Drop)
		tmpl = f.DB
	}
	db := testenv.New(b, tmpl.Name).Open(b)
	r := newRig(b, generous)
	r.db = db
	h, err := New(Options{DB: db, Keys: r.keys, Templates: r.set, Office: office, Location: almaty,
		Now: func() time.Time { return fixtureNow }})
	if err != nil {
		b.Fatal(err)
	}
	r.h = h // no rate limit: the benchmark measures the page
	var students []string
	if err := db.Select(&students, `SELECT DISTINCT o.student_id FROM sisnotify.obligations o JOIN sisnotify.students s USING (student_id)
		WHERE o.closed_at IS NULL AND s.removed_at IS NULL ORDER BY 1 LIMIT 1000`); err != nil || len(students) == 0 {
		b.Fatalf("students: %d, %v", len(students), err)
	}
	paths := make([]string, len(students))
	for i, s := range students {
		paths[i] = Path + r.keys.StudentLink(s, 1, fixtureNight)
	}
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		w := r.do("GET", paths[i%len(paths)], "192.0.2.99:1", nil)
		took = append(took, time.Since(start))
		if w.Code != http.StatusOK {
			b.Fatalf("GET = %d", w.Code)
		}
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
}
