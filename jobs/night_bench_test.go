package jobs_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/worker"
)

// BenchmarkNight runs whole nights on generated SISes of 10,000, 100,000
// and 1,000,000 students (SISNOTIFY_BENCH_SIZES to change) into a local
// SMTP sink and the SMS outbox: a first night (the initial load), then the
// next night on an unchanged SIS, after the day between (dayBetween). For
// each size it prints the machine;
// right before each night, the plain read of the four SIS tables (COPY
// (SELECT * FROM sis.<table>) TO STDOUT, the targets' baseline) and the
// sync's own read in key order; each phase's wall time, rate, peak RSS and CPU
// busy, beside the limits measured in the same run (the sink's
// one-connection rate, asynq's no-op rate); the night's notices; after
// the first night, PostgreSQL's own load of the rows its sync wrote (the
// first sync's floor, loadFloor); and the figures against the targets of
// issue 18 (benchTargets).
// SISNOTIFY_BENCH_RUNS=N runs each size N times and ends with the range of
// each figure.
//
//	make bench
func BenchmarkNight(b *testing.B) {
	sizes := benchSizes(b)
	runs := benchRuns(b)
	for _, n := range sizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			if runs == 1 {
				benchNight(b, n, true)
				return
			}
			// A sub-benchmark a run, so that each run's databases, Redis
			// database and SMTP sink go when it ends.
			var figures [][]float64
			var floors []float64
			for run := 1; run <= runs; run++ {
				ok := b.Run(fmt.Sprintf("run%d", run), func(b *testing.B) {
					fmt.Printf("\n=== %s students, run %d of %d\n", commas(int64(n)), run, runs)
					f, floor := benchNight(b, n, run == 1)
					figures, floors = append(figures, f), append(floors, floor)
				})
				if !ok {
					return
				}
			}
			printRanges(n, figures, floors)
		})
	}
}

// The nights' as-of dates: the demo SIS is generated as of the first
// (asOf). On 2026-11-25 the first night of 1,000,000 students makes about
// 20,000 notices, for about 1% of the students (sisdemo's shares are tuned
// to it), and break-briefing, which reaches every active student 21 days
// before the winter break (on 4 December), is not due yet.
var (
	firstNight = asOf
	nextNight  = asOf.AddDays(1)
)

// sisTables are the tables a read of the SIS copies, in the sync's order.
var sisTables = []sis.Table{sis.Faculties, sis.AcademicPeriods, sis.Students, sis.TravelRequests}

// The two reads of the SIS that each night is compared with.
const (
	plainRead  = "plain read"
	sortedRead = "the sync's read (in key order)"
)

// phaseRow is one measured phase of a night (or one read of the SIS).
type phaseRow struct {
	name  string
	d     time.Duration
	items int64
	unit  string
	peak  int64       // the process's peak RSS during the phase
	cpu   testenv.CPU // the whole machine's, during the phase
	note  string      // what the phase is next to
}

// measure runs f as one phase, f returning the items it handled: its
// wall time, the process's peak RSS and the machine's CPU time meanwhile.
func measure(name, unit string, f func() int64) phaseRow {
	debug.FreeOSMemory() // so the peak is this phase's, not what the last one left
	testenv.ResetPeakRSS()
	cpu0, _ := testenv.MachineCPU()
	start := time.Now()
	items := f()
	d := time.Since(start)
	cpu1, _ := testenv.MachineCPU()
	return phaseRow{name: name, d: d, items: items, unit: unit, peak: testenv.PeakRSS(), cpu: cpu1.Sub(cpu0)}
}

// nightRun is what one night measured.
type nightRun struct {
	title         string
	day           date.Date
	plain, sorted phaseRow // the reads of the SIS right before the night
	phases        []phaseRow
	// fullSync is a full read of the unchanged SIS after the night
	// (SISNOTIFY_SIS_UPDATED_AT=ignored); only the next night has one.
	fullSync *phaseRow
	// floor is PostgreSQL's own load of the rows the sync wrote
	// (loadFloor); only the first night has one.
	floor   *phaseRow
	notices noticeCount
}

// total is the night's wall time: its phases, without the reads before it.
func (nr nightRun) total() time.Duration {
	var t time.Duration
	for _, p := range nr.phases {
		t += p.d
	}
	return t
}

// peak is the highest peak RSS of the night's phases.
func (nr nightRun) peak() int64 {
	var m int64
	for _, p := range nr.phases {
		m = max(m, p.peak)
	}
	return m
}

// syncRatio is the sync's wall time (the first phase's) over the plain
// read's.
func (nr nightRun) syncRatio() float64 {
	return nr.phases[0].d.Seconds() / nr.plain.d.Seconds()
}

// nightBench is one run at one size: the SIS, the worker's database and
// the delivery rig, with the limits measured beside them.
type nightBench struct {
	b        *testing.B
	e        *env
	r        *rig
	rows     int64 // of the four SIS tables
	sinkRate float64
	sinkCPU  time.Duration // the machine's CPU time per message the sink took
	asynq    float64       // no-op tasks/s
	asynqCPU time.Duration // per no-op task
}

// benchNight runs the two nights on a new SIS of n students, prints them
// (after the machine when showMachine), and returns the figures of
// benchTargets and the first sync's floor (nightRun.floorRatio).
func benchNight(b *testing.B, n int, showMachine bool) ([]float64, float64) {
	if b.N != 1 {
		b.Fatalf("one run per iteration (b.N is %d): -benchtime 1x, and SISNOTIFY_BENCH_RUNS to repeat", b.N)
	}
	b.StopTimer()
	e := newEnv(b)
	gen := time.Now()
	st := e.generate(b, n)
	genD := time.Since(gen)
	nb := &nightBench{b: b, e: e, r: newRigTB(b, e, mailtest.Discard()),
		rows: int64(st.Students + st.TravelRequests + st.Faculties + st.AcademicPeriods)}
	// asynq (v0.26) keeps a stopped server's processor, and with it the
	// handler, for the server's ShutdownTimeout (20 s, worker.NewServer's)
	// after the drain: empty the Deliverer it reaches, so that the next run
	// (or size) does not start with this one's templates and pools in its
	// heap and peak RSS.
	b.Cleanup(func() { *nb.r.d = jobs.Deliverer{} })
	if showMachine {
		fmt.Printf("\n%s students. Machine: %s\n", commas(int64(n)), machine(b, e.db, nb.r.rdb))
	}
	fmt.Printf("SIS: %s rows (%s students, %s travel requests, %d faculties, %d academic periods), generated in %s\n",
		commas(nb.rows), commas(int64(st.Students)), commas(int64(st.TravelRequests)), st.Faculties, st.AcademicPeriods, genD.Round(time.Millisecond))
	nb.measureLimits()
	fmt.Printf("Limits: the SMTP sink %.0f msgs/s on one connection (%s of machine CPU per message); asynq alone %.0f no-op tasks/s (%s per task)\n",
		nb.sinkRate, nb.sinkCPU.Round(time.Microsecond), nb.asynq, nb.asynqCPU.Round(time.Microsecond))

	// Warm the SIS's cache, as a nightly read would find it.
	nb.readSIS(plainRead, (*sis.Snapshot).CopyPlain)
	nb.readSIS(sortedRead, (*sis.Snapshot).CopyRaw)
	first := nb.night("first night (initial load)", firstNight)
	floor := nb.loadFloor(first.plain)
	first.floor = &floor
	first.print(n, nb.rows)
	nb.dayBetween()
	next := nb.night("next night, SIS unchanged", nextNight)
	full := nb.fullSync(nextNight, next.plain)
	next.fullSync = &full
	next.print(n, nb.rows)

	figures := make([]float64, len(benchTargets))
	for i, t := range benchTargets {
		figures[i] = t.of(first, next)
		b.ReportMetric(figures[i], t.metric)
	}
	b.ReportMetric(first.floorRatio(), floorMetric)
	printTargets(n, figures, first.floorRatio())
	return figures, first.floorRatio()
}

// redisUsed is Redis's used_memory (INFO memory), in bytes.
func redisUsed(b *testing.B, rdb *redis.Client) int64 {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("INFO memory has no used_memory")
	return 0
}

// dayBetween does to the worker's database what the day between two
// nights does: autovacuum vacuums and analyzes the tables the night
// filled (within minutes, in production; here the next night would start
// seconds later). The sync's read of the snapshot's keys and hashes is an
// index-only scan once the table is vacuumed.
func (nb *nightBench) dayBetween() {
	start := time.Now()
	if _, err := nb.e.db.Exec(`VACUUM (ANALYZE)`); err != nil {
		nb.b.Fatal(err)
	}
	fmt.Printf("\nthe day between: VACUUM (ANALYZE) of the worker's database, as autovacuum would, in %s (not part of either night)\n", time.Since(start).Round(time.Millisecond))
}

// measureLimits measures what the SMTP sink and asynq alone do on this
// machine, in this run.
func (nb *nightBench) measureLimits() {
	const sinkMsgs = 10_000
	cpu0, _ := testenv.MachineCPU()
	rate, err := nb.r.smtp.OneConnectionRate(sinkMsgs, 3000)
	if err != nil {
		nb.b.Fatal(err)
	}
	cpu1, _ := testenv.MachineCPU()
	// Client and server, both in this process.
	nb.sinkRate, nb.sinkCPU = rate, cpu1.Sub(cpu0).Busy/sinkMsgs
	nb.asynq, nb.asynqCPU = nb.r.asynqCeiling(nb.b, 10_000)
}

// copyFunc is a read of one SIS table: Snapshot.CopyPlain or CopyRaw.
type copyFunc func(*sis.Snapshot, context.Context, sis.Table, io.Writer) (int64, error)

// readSIS reads the four SIS tables in one snapshot with read, into
// io.Discard, as one phase.
func (nb *nightBench) readSIS(name string, read copyFunc) phaseRow {
	var bytes int64
	p := measure(name, "rows", func() int64 {
		err := sis.NewReader(nb.e.sisURL).Read(context.Background(), func(ctx context.Context, s *sis.Snapshot) error {
			for _, t := range sisTables {
				n, err := read(s, ctx, t, io.Discard)
				if err != nil {
					return err
				}
				bytes += n
			}
			return nil
		})
		if err != nil {
			nb.b.Fatal(err)
		}
		return nb.rows
	})
	p.note = fmt.Sprintf("%.1f MiB", mib(bytes))
	return p
}

// night reads the SIS both ways, then runs one night as of day, phase by
// phase, timing the phases only.
func (nb *nightBench) night(title string, day date.Date) nightRun {
	b, e, r := nb.b, nb.e, nb.r
	ctx := context.Background()
	nr := nightRun{title: title, day: day}
	nr.plain = nb.readSIS(plainRead, (*sis.Snapshot).CopyPlain)
	nr.plain.note += `: COPY (SELECT * FROM sis.<table>) TO STDOUT, the targets' baseline`
	nr.sorted = nb.readSIS(sortedRead, (*sis.Snapshot).CopyRaw)
	nr.sorted.note += fmt.Sprintf(`: %.2f× the plain read (every column ::text and the SIS's row hash, ORDER BY the key)`, ratio(nr.sorted.d, nr.plain.d))

	b.StartTimer()
	var byChanges bool
	sync := measure("sync", "rows", func() int64 {
		// As a SIS that moves updated_at on every change is read
		// (SISNOTIFY_SIS_UPDATED_AT=trusted): the first night in full,
		// the next by its changes.
		s := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: e.db, TrustUpdatedAt: true, Guard: &store.Guard{MaxRosterDrop: 0.2, MaxEmptied: 0.2}}
		res, err := s.Run(ctx, day)
		if err != nil {
			b.Fatal(err)
		}
		byChanges = res.ChangesSince != nil
		return nb.rows
	})
	how := "a full read"
	if byChanges {
		how = "a read of changes (updated_at trusted)"
	}
	sync.note = fmt.Sprintf("%s: %.2f× the plain read (the targets' baseline), %.2f× the sync's read",
		how, ratio(sync.d, nr.plain.d), ratio(sync.d, nr.sorted.d))
	var ev jobs.EvalResult
	evaluate := measure("evaluate", "students", func() int64 {
		ev = e.evaluate(b, day.String())
		return ev.Students
	})
	evaluate.note = "every student"
	if !ev.Full {
		evaluate.note = fmt.Sprintf("%d students whose dates came or facts changed; the others cannot have changed", ev.Students)
	}
	var er jobs.EnqueueResult
	redisBefore := redisUsed(b, r.rdb)
	enqueue := measure("enqueue", "tasks", func() int64 {
		var err error
		if er, err = r.q.Run(ctx, day.Time(time.UTC).Add(12*time.Hour)); err != nil {
			b.Fatal(err)
		}
		return er.Pending
	})
	if er.Pending > 0 {
		grew := redisUsed(b, r.rdb) - redisBefore
		enqueue.note = fmt.Sprintf("Redis used %.1f MiB more, %d bytes a task", float64(grew)/(1<<20), grew/er.Pending)
	}
	sinkBefore := r.smtp.Count()
	// The workers run all the time in serve: started before the delivery
	// is measured and stopped after it, which then ends as the night's
	// digest phase sees it end (worker.WaitDeliveries). The enqueue is
	// measured alone, before them: in serve the workers start on the
	// first task while the rest are enqueued.
	b.StopTimer()
	stop := r.serve(b)
	b.StartTimer()
	deliver := measure("deliver", "notices", func() int64 {
		if err := worker.WaitDeliveries(ctx, store.New(e.db), day, time.Now().Add(2*time.Minute), nil); err != nil {
			b.Fatal(err)
		}
		return er.Pending
	})
	b.StopTimer()
	stop()
	b.StartTimer()
	deliver.note = nb.deliveryNote(deliver, int64(r.smtp.Count()-sinkBefore))
	digest := measure("digest", "obligations", func() int64 {
		// The deliverer's templates, as the worker's digest uses: the
		// process builds its set once, not every night.
		d := &jobs.Digest{DB: e.db, Mail: r.d.Mail, Templates: r.d.Templates, OfficeEmails: []string{"office@uni.example"}, OfficeLang: "ru"}
		res, err := d.Run(ctx, day)
		if err != nil {
			b.Fatal(err)
		}
		return int64(res.Rows)
	})
	b.StopTimer()

	nr.phases = []phaseRow{sync, evaluate, enqueue, deliver, digest}
	nr.notices = countNotices(b, e, day)
	return nr
}

// fullSync syncs the unchanged SIS once more, reading it in full as a
// SIS whose updated_at is not trusted is read every night: what the next
// night's sync costs without the read of changes. It is not part of a
// night.
func (nb *nightBench) fullSync(day date.Date, plain phaseRow) phaseRow {
	p := measure("sync, full read", "rows", func() int64 {
		s := &jobs.Sync{SIS: sis.NewReader(nb.e.sisURL), DB: nb.e.db, Guard: &store.Guard{MaxRosterDrop: 0.2, MaxEmptied: 0.2}}
		if _, err := s.Run(context.Background(), day); err != nil {
			nb.b.Fatal(err)
		}
		return nb.rows
	})
	p.note = fmt.Sprintf("updated_at ignored (the SIS's hashes, then the rows that changed), after the night: %.2f× the plain read", ratio(p.d, plain.d))
	return p
}

// deliveryNote puts the delivery next to the sink's and asynq's limits:
// its emails' rate, and the machine's CPU time per notice next to theirs
// per message and task and the budget that half the sink's rate leaves on
// this machine's CPUs.
func (nb *nightBench) deliveryNote(p phaseRow, emails int64) string {
	perSec := float64(emails) / p.d.Seconds()
	note := fmt.Sprintf("%s emails: %.0f/s = %.0f%% of the sink's 1-conn %.0f msgs/s; asynq alone %.0f no-op tasks/s",
		commas(emails), perSec, 100*perSec/nb.sinkRate, nb.sinkRate, nb.asynq)
	if p.cpu.Total > 0 && p.items > 0 {
		budget := time.Duration(float64(runtime.NumCPU()) * float64(time.Second) / (nb.sinkRate / 2))
		note += fmt.Sprintf("\n%smachine CPU per notice %s; asynq alone %s per no-op task, the sink %s per message; half the sink's rate leaves %s",
			strings.Repeat(" ", phaseIndent), (p.cpu.Busy / time.Duration(p.items)).Round(time.Microsecond),
			nb.asynqCPU.Round(time.Microsecond), nb.sinkCPU.Round(time.Microsecond), budget.Round(time.Microsecond))
	}
	return note
}

// ratio is a over b.
func ratio(a, b time.Duration) float64 { return a.Seconds() / b.Seconds() }
