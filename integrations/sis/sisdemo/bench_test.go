package sisdemo

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// heapPeak samples the Go heap in use every few milliseconds until stop is
// called, and returns the largest sample.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

// BenchmarkGenerate writes a roster of SISDEMO_BENCH_STUDENTS students
// (default 1,000,000) per iteration and reports the time per roster, the
// peak Go heap and the bytes allocated per student:
//
//	go test -run '^$' -bench Generate -benchtime 1x ./integrations/sis/sisdemo/
func BenchmarkGenerate(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("SISDEMO_BENCH_STUDENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	db := newSIS(b)
	opt := Options{Students: n, Seed: 1, AsOf: date.MustParse("2026-03-16")}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := heapPeak()
	b.ResetTimer()
	var st Stats
	for b.Loop() {
		var err error
		if st, err = Generate(context.Background(), db, opt); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	peak := stop()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(n), "B-alloc/student")
	b.ReportMetric(float64(st.TravelRequests), "travel-requests")
	if kb := vmHWM(); kb > 0 {
		b.ReportMetric(float64(kb)/1024, "peak-RSS-MiB")
	}
}

// vmHWM returns the peak resident set of this process in KiB (Linux), or 0.
func vmHWM() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return kb
		}
	}
	return 0
}

// BenchmarkBuild measures the generator alone, without PostgreSQL.
func BenchmarkBuild(b *testing.B) {
	g := newGen(Options{Seed: 1, AsOf: date.MustParse("2026-03-16")}, DefaultBadRowShare)
	w := &rowWriter{}
	i := 0
	for b.Loop() {
		g.build(i)
		_ = w.student(g)
		i++
	}
}
