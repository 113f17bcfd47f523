package studentpage

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/internal/nighttest"
)

// BenchmarkStudentPage opens the page of students with open obligations
// through their links (the token verified, the student and their
// obligations read, the wording rendered), one request at a time. The
// fixture's 500 students by default; SISNOTIFY_BENCH_STUDENTS=N builds a
// demo SIS of N students and its first night first (not timed). It
// reports ns/op and the p95 of the requests (p95-ms).
func BenchmarkStudentPage(b *testing.B) {
	r, paths := benchPages(b)
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
	reportP95(b, took)
}

// BenchmarkStudentPageParallel is BenchmarkStudentPage with as many
// clients at once as GOMAXPROCS × 4 (-cpu to change): the rate the
// machine serves (pages/s) and the p95 each client sees.
func BenchmarkStudentPageParallel(b *testing.B) {
	r, paths := benchPages(b)
	var mu sync.Mutex
	var took []time.Duration
	var next atomic.Int64
	b.SetParallelism(4)
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			i := next.Add(1)
			t0 := time.Now()
			w := r.do("GET", paths[int(i)%len(paths)], "192.0.2.99:1", nil)
			mine = append(mine, time.Since(t0))
			if w.Code != http.StatusOK {
				b.Errorf("GET = %d", w.Code)
				return
			}
		}
		mu.Lock()
		took = append(took, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	b.ReportMetric(float64(len(took))/time.Since(start).Seconds(), "pages/s")
	reportP95(b, took)
}

func reportP95(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
}

// benchPages is a handler without a rate limit over the benchmark's
// database, and the links of up to 1,000 students with open obligations.
func benchPages(b *testing.B) (*rig, []string) {
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
	return r, paths
}
