package jobs_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/templates"
)

// BenchmarkNight runs whole nights on generated SISes of 10,000, 100,000
// and 1,000,000 students (SISNOTIFY_BENCH_SIZES to change) into a local
// SMTP sink and the SMS outbox, and prints for each phase its wall time,
// rate and peak RSS, next to the limits measured in the same run: a raw
// COPY of the same SIS rows and the sink's one-connection rate. Then it
// runs the next night on an unchanged SIS.
//
//	make bench
func BenchmarkNight(b *testing.B) {
	sizes := []int{10_000, 100_000, 1_000_000}
	if v := os.Getenv("SISNOTIFY_BENCH_SIZES"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("SISNOTIFY_BENCH_SIZES: %q is not a size", f)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				benchNight(b, n)
			}
		})
	}
}

type phaseRow struct {
	name  string
	d     time.Duration
	items int64
	unit  string
	peak  int64
	cpu   testenv.CPU // the whole machine's, during the phase
	limit string
}

func benchNight(b *testing.B, n int) {
	b.StopTimer()
	ctx := context.Background()
	e := newEnv(b)
	st := e.generate(b, n)
	rows := int64(st.Students + st.TravelRequests + st.Faculties + st.AcademicPeriods)
	r := newRigTB(b, e, mailtest.Discard())
	const sinkMsgs = 10_000
	cpu0, _ := testenv.MachineCPU()
	sinkRate, err := r.smtp.OneConnectionRate(sinkMsgs, 3000)
	if err != nil {
		b.Fatal(err)
	}
	cpu1, _ := testenv.MachineCPU()
	// The machine's CPU time per message while one connection fed the
	// sink: client and server, both in this process.
	sinkCPU := cpu1.Sub(cpu0).Busy / sinkMsgs
	ceiling, asynqCPU := r.asynqCeiling(b, 10_000)
	rawCopy := func() time.Duration {
		start := time.Now()
		err := sis.NewReader(e.sisURL).Read(ctx, func(ctx context.Context, s *sis.Snapshot) error {
			for _, t := range []sis.Table{sis.Faculties, sis.AcademicPeriods, sis.Students, sis.TravelRequests} {
				if _, err := s.CopyRaw(ctx, t, io.Discard); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	rawCopy()
	raw := rawCopy()

	night := func(day string) []phaseRow {
		var out []phaseRow
		phase := func(name, unit string, items func() int64, limit string, f func()) {
			debug.FreeOSMemory() // so the peak is this phase's, not what the last one left
			testenv.ResetPeakRSS()
			cpu0, _ := testenv.MachineCPU()
			start := time.Now()
			f()
			d := time.Since(start)
			cpu1, _ := testenv.MachineCPU()
			out = append(out, phaseRow{name, d, items(), unit, testenv.PeakRSS(), cpu1.Sub(cpu0), limit})
		}
		var syncRes jobs.SyncResult
		phase("sync", "rows", func() int64 { return rows }, fmt.Sprintf("raw COPY %s (%.2fx)", raw.Round(time.Millisecond), 0.0), func() {
			s := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: e.db, Guard: &store.Guard{MaxRosterDrop: 0.2, MaxEmptied: 0.2}}
			var err error
			if syncRes, err = s.Run(ctx, mustDate(day)); err != nil {
				b.Fatal(err)
			}
		})
		out[0].limit = fmt.Sprintf("raw COPY %s: %.2fx", raw.Round(time.Millisecond), out[0].d.Seconds()/raw.Seconds())
		var ev jobs.EvalResult
		phase("evaluate", "students", func() int64 { return ev.Students }, "", func() {
			ev = e.evaluate(b, day)
		})
		var er jobs.EnqueueResult
		phase("enqueue", "tasks", func() int64 { return er.Pending }, "", func() {
			er = r.enqueue(b)
		})
		sinkBefore := r.smtp.Count()
		phase("deliver", "notices", func() int64 { return er.Pending }, "", func() {
			r.drain(b)
		})
		emails := int64(r.smtp.Count() - sinkBefore)
		dp := &out[len(out)-1]
		dp.limit = fmt.Sprintf("%d emails: %.0f/s = %.0f%% of the sink's 1-conn %.0f msgs/s; asynq alone %.0f no-op tasks/s",
			emails, float64(emails)/dp.d.Seconds(), 100*float64(emails)/dp.d.Seconds()/sinkRate, sinkRate, ceiling)
		if dp.cpu.Total > 0 && er.Pending > 0 {
			// What the machine spent per notice, next to what the sink and
			// asynq alone cost, and the budget that half the sink's rate
			// leaves on this machine's CPUs.
			budget := time.Duration(float64(runtime.NumCPU()) * float64(time.Second) / (sinkRate / 2))
			dp.limit += fmt.Sprintf("\n  %-16s machine CPU per notice %s; asynq alone %s per no-op task, the sink %s per message; half the sink's rate leaves %s",
				"", (dp.cpu.Busy / time.Duration(er.Pending)).Round(time.Microsecond), asynqCPU.Round(time.Microsecond),
				sinkCPU.Round(time.Microsecond), budget.Round(time.Microsecond))
		}
		var dg jobs.DigestResult
		phase("digest", "obligations", func() int64 { return int64(dg.Rows) }, "", func() {
			set, _ := templates.New()
			d := &jobs.Digest{DB: e.db, Mail: r.d.Mail, Templates: set, OfficeEmails: []string{"office@uni.example"}, OfficeLang: "ru"}
			var err error
			if dg, err = d.Run(ctx, mustDate(day)); err != nil {
				b.Fatal(err)
			}
		})
		_ = syncRes
		return out
	}
	print := func(title string, ps []phaseRow) {
		var total time.Duration
		fmt.Fprintf(os.Stdout, "\n%s (%d students, %d SIS rows)\n", title, n, rows)
		fmt.Fprintf(os.Stdout, "  %-16s %10s %14s %12s %9s  %s\n", "phase", "wall", "rate", "peak RSS", "CPU busy", "next to")
		for _, p := range ps {
			total += p.d
			fmt.Fprintf(os.Stdout, "  %-16s %10s %10.0f %s/s %8d MiB %8.0f%%  %s\n", p.name, p.d.Round(time.Millisecond), float64(p.items)/p.d.Seconds(), p.unit, p.peak>>20, 100*p.cpu.Utilization(), p.limit)
		}
		fmt.Fprintf(os.Stdout, "  %-16s %10s\n", "night", total.Round(time.Millisecond))
		b.ReportMetric(total.Seconds(), strings.ReplaceAll(title, " ", "-")+"-s")
	}
	b.StartTimer()
	first := night("2026-11-25")
	b.StopTimer()
	print("first night (initial load)", first)
	raw = rawCopy()
	b.StartTimer()
	second := night("2026-11-26")
	b.StopTimer()
	print("next night, SIS unchanged", second)
}
