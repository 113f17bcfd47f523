package jobs_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

// What BenchmarkNight prints, and the targets it measures against.

// benchSizes are the roster sizes of BenchmarkNight: SISNOTIFY_BENCH_SIZES
// (comma-separated), by default 10,000, 100,000 and 1,000,000.
func benchSizes(b *testing.B) []int {
	v := os.Getenv("SISNOTIFY_BENCH_SIZES")
	if v == "" {
		return []int{10_000, 100_000, 1_000_000}
	}
	var sizes []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("SISNOTIFY_BENCH_SIZES: %q is not a size", f)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// benchRuns is how many times BenchmarkNight runs each size:
// SISNOTIFY_BENCH_RUNS, by default 1.
func benchRuns(b *testing.B) int {
	v := os.Getenv("SISNOTIFY_BENCH_RUNS")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		b.Fatalf("SISNOTIFY_BENCH_RUNS: %q is not a number of runs", v)
	}
	return n
}

// targetStudents is the roster size the targets are stated for.
const targetStudents = 1_000_000

// benchTarget is one of the scale targets of issue 18, stated for
// 1,000,000 students: met when the figure is at most max.
type benchTarget struct {
	name   string
	metric string // the unit b.ReportMetric reports it under
	unit   string // printed after the figure
	prec   int    // decimals printed
	max    float64
	of     func(first, next nightRun) float64
}

var benchTargets = []benchTarget{
	{"first night", "first-night-s", " s", 2, 20,
		func(first, _ nightRun) float64 { return first.total().Seconds() }},
	{"first sync", "first-sync-x-plain", "× plain read", 2, 2.5,
		func(first, _ nightRun) float64 { return first.syncRatio() }},
	{"unchanged sync", "unchanged-sync-x-plain", "× plain read", 2, 1.5,
		func(_, next nightRun) float64 { return next.syncRatio() }},
	{"unchanged sync, full read", "unchanged-full-sync-x-plain", "× plain read", 2, 1.5,
		func(_, next nightRun) float64 { return ratio(next.fullSync.d, next.plain.d) }},
	{"unchanged night", "unchanged-night-s", " s", 2, 6,
		func(_, next nightRun) float64 { return next.total().Seconds() }},
	// The same night with the default full read: its sync replaced by
	// the full read measured after it.
	{"unchanged night, full read", "unchanged-full-night-s", " s", 2, 6,
		func(_, next nightRun) float64 { return (next.total() - next.phases[0].d + next.fullSync.d).Seconds() }},
	{"peak RSS (any phase)", "peak-MiB", " MiB", 0, 192,
		func(first, next nightRun) float64 { return mib(max(first.peak(), next.peak())) }},
}

// floorMetric is the unit b.ReportMetric reports the first sync's floor
// under: PostgreSQL's own load of the rows, over the plain read.
const floorMetric = "first-sync-floor-x-plain"

// floorRatio is the first sync's floor (loadFloor) over the plain read.
func (nr nightRun) floorRatio() float64 {
	return ratio(nr.floor.d, nr.plain.d)
}

// printFloor prints the first sync's floor (a range after several runs)
// under the targets: not a target, but the least time the first sync
// could take on this machine.
func printFloor(v string) {
	fmt.Printf("  %-26s %-18s %22s  PostgreSQL's own load of the same rows: the first sync cannot be faster\n",
		"first sync's floor", "", v+"× plain read")
}

// format prints a figure of t with its unit.
func (t benchTarget) format(v float64) string {
	return strconv.FormatFloat(v, 'f', t.prec, 64) + t.unit
}

// limit prints the target: "≤ 20 s".
func (t benchTarget) limit() string {
	return "≤ " + strconv.FormatFloat(t.max, 'f', -1, 64) + t.unit
}

// met reports whether v meets t.
func (t benchTarget) met(v float64) bool { return v <= t.max }

// targetsScope says which roster the targets are stated for, next to the
// one measured.
func targetsScope(n int) string {
	if n == targetStudents {
		return "stated for 1,000,000 students"
	}
	return "stated for 1,000,000 students; measured here at " + commas(int64(n))
}

// printTargets prints one run's figures against the targets, and the
// first sync's floor.
func printTargets(n int, figures []float64, floor float64) {
	fmt.Printf("\nAgainst the targets (%s)\n", targetsScope(n))
	for i, t := range benchTargets {
		verdict := "met"
		if !t.met(figures[i]) {
			verdict = "NOT met"
		}
		fmt.Printf("  %-26s %-18s %22s  %s\n", t.name, t.limit(), t.format(figures[i]), verdict)
	}
	printFloor(strconv.FormatFloat(floor, 'f', 2, 64))
}

// printRanges prints, after several runs of one size, each target's figure
// and the first sync's floor as their ranges over the runs.
func printRanges(n int, runs [][]float64, floors []float64) {
	if len(runs) == 0 {
		return
	}
	fmt.Printf("\nAcross %d runs at %s students, min–max (targets %s)\n", len(runs), commas(int64(n)), targetsScope(n))
	for i, t := range benchTargets {
		lo, hi, met := runs[0][i], runs[0][i], 0
		for _, figures := range runs {
			lo, hi = min(lo, figures[i]), max(hi, figures[i])
			if t.met(figures[i]) {
				met++
			}
		}
		fmt.Printf("  %-26s %-18s %22s  met in %d of %d runs\n", t.name, t.limit(),
			strconv.FormatFloat(lo, 'f', t.prec, 64)+"–"+t.format(hi), met, len(runs))
	}
	lo, hi := slices.Min(floors), slices.Max(floors)
	printFloor(strconv.FormatFloat(lo, 'f', 2, 64) + "–" + strconv.FormatFloat(hi, 'f', 2, 64))
}

// phaseIndent indents the continuation lines of a phase's note.
const phaseIndent = 4

const phaseFormat = "  %-30s %9s %10s %-13s %9s %8s  %s\n"

func (p phaseRow) print() {
	fmt.Printf(phaseFormat, p.name, p.d.Round(time.Millisecond), commas(int64(float64(p.items)/p.d.Seconds())), p.unit+"/s",
		fmt.Sprintf("%.0f MiB", mib(p.peak)), fmt.Sprintf("%.0f%%", 100*p.cpu.Utilization()), p.note)
}

// print prints the night: the reads before it, its phases, its total and
// its notices.
func (nr nightRun) print(students int, rows int64) {
	fmt.Printf("\n%s, as of %s (%s students, %s SIS rows)\n", nr.title, nr.day, commas(int64(students)), commas(rows))
	fmt.Printf(phaseFormat, "", "wall", "rate", "", "peak RSS", "CPU busy", "next to")
	nr.plain.print()
	nr.sorted.print()
	if nr.floor != nil {
		nr.floor.print()
	}
	for _, p := range nr.phases {
		p.print()
	}
	fmt.Printf("  %-30s %9s  (sync to digest; the reads before it are not part of the night)\n", "night", nr.total().Round(time.Millisecond))
	if nr.fullSync != nil {
		nr.fullSync.print()
	}
	c := nr.notices
	fmt.Printf("  notices: %s, about %s students (%.2f%% of the roster); break-briefing %s; by rule: %s\n",
		commas(c.notices), commas(c.students), 100*float64(c.students)/float64(students), commas(c.rule("break-briefing")), c.byRule())
}

// noticeCount is what one night's evaluation created.
type noticeCount struct {
	notices  int64
	students int64 // the students they are about
	rules    []ruleCount
}

type ruleCount struct {
	Rule string
	N    int64
}

func (c noticeCount) rule(name string) int64 {
	for _, r := range c.rules {
		if r.Rule == name {
			return r.N
		}
	}
	return 0
}

func (c noticeCount) byRule() string {
	if len(c.rules) == 0 {
		return "none"
	}
	parts := make([]string, len(c.rules))
	for i, r := range c.rules {
		parts[i] = r.Rule + " " + commas(r.N)
	}
	return strings.Join(parts, ", ")
}

// countNotices counts the notices the night of day created.
func countNotices(tb testing.TB, e *env, day date.Date) noticeCount {
	tb.Helper()
	var c noticeCount
	if err := e.db.QueryRow(`SELECT count(*), count(DISTINCT student_id) FROM sisnotify.notices WHERE night = $1`, day.String()).
		Scan(&c.notices, &c.students); err != nil {
		tb.Fatal(err)
	}
	if err := e.db.Select(&c.rules, `SELECT rule, count(*) AS n FROM sisnotify.notices WHERE night = $1 GROUP BY rule ORDER BY n DESC, rule`, day.String()); err != nil {
		tb.Fatal(err)
	}
	return c
}

// machine describes what the benchmark runs on: the CPU, Go, and the
// versions of the PostgreSQL server (asked on db) and the Redis server.
func machine(tb testing.TB, db *sqlx.DB, rdb *redis.Client) string {
	tb.Helper()
	cpu := testenv.CPUModel()
	if cpu == "" {
		cpu = "CPU model unknown"
	}
	var pg string
	if err := db.Get(&pg, `SHOW server_version`); err != nil {
		tb.Fatal(err)
	}
	info, err := rdb.Info(context.Background(), "server").Result()
	if err != nil {
		tb.Fatal(err)
	}
	return fmt.Sprintf("%s, %d CPUs; %s; PostgreSQL %s; Redis %s", cpu, runtime.NumCPU(), runtime.Version(), pg, redisVersion(info))
}

// redisVersion picks redis_version out of INFO server's reply.
func redisVersion(info string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	return "(version unknown)"
}

// mib is bytes in MiB.
func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }

// commas writes n with thousands separators: 1,000,000.
func commas(n int64) string {
	if n < 0 {
		return "-" + commas(-n)
	}
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
