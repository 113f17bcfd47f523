package calendar

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

var d = date.MustParse

func TestOfficePageExamples(t *testing.T) {
	c := Default()
	tests := []struct {
		name   string
		anchor string
		n      int
		want   string
	}{
		// "Within 1 working day after crossing the border of Kazakhstan":
		// entering on Friday 2026-03-20, Sat 21 and Sun 22 are the weekend
		// and 23-25 March are the Nauryz days off.
		{"arrival on the Friday before Nauryz", "2026-03-20", 1, "2026-03-26"},
		// "within three working days" after a break: Tuesday 16 December is
		// Independence Day.
		{"return before Independence Day", "2025-12-12", 3, "2025-12-18"},
		{"plain week", "2026-02-02", 1, "2026-02-03"},
		{"Friday to Monday", "2026-02-06", 1, "2026-02-09"},
		{"from a Saturday", "2026-02-07", 1, "2026-02-09"},
		{"from a holiday", "2026-03-23", 1, "2026-03-26"},
		{"zero is the date itself", "2026-03-21", 0, "2026-03-21"},
		{"transferred working Sunday counts", "2025-01-04", 1, "2025-01-05"},
		{"back one", "2026-03-26", -1, "2026-03-20"},
		{"back three over Independence Day", "2025-12-18", -3, "2025-12-12"},
		{"back from a Sunday", "2026-02-08", -1, "2026-02-06"},
		{"New Year 2027, 2 January moved to Monday 4", "2026-12-31", 1, "2027-01-05"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.AddWorkingDays(d(tt.anchor), tt.n); got != d(tt.want) {
				t.Errorf("%s %+d wd = %s (%s), want %s", tt.anchor, tt.n, got, got.Weekday(), tt.want)
			}
		})
	}
	if c.FallbackUsed() {
		t.Error("dates inside 2025-2027 used the fallback")
	}
}

func TestOverrideMovesDates(t *testing.T) {
	c, err := New(Overrides{DaysOff: []date.Date{d("2026-03-26")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.AddWorkingDays(d("2026-03-20"), 1); got != d("2026-03-27") {
		t.Errorf("arrival with 26 March off: %s, want 2026-03-27", got)
	}
	c, err = New(Overrides{DaysOff: []date.Date{d("2025-12-17")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.AddWorkingDays(d("2025-12-12"), 3); got != d("2025-12-19") {
		t.Errorf("return with 17 December off: %s, want 2025-12-19", got)
	}
	// An extra working day: Saturday 2026-03-21 worked.
	c, err = New(Overrides{WorkingDays: []date.Date{d("2026-03-21")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.AddWorkingDays(d("2026-03-20"), 1); got != d("2026-03-21") {
		t.Errorf("with Saturday worked: %s, want 2026-03-21", got)
	}
	// The open question of the md file: 31 August 2026.
	if !Default().IsWorkingDay(d("2026-08-31")) {
		t.Error("2026-08-31 should be a working day in the shipped table")
	}
	c, _ = New(Overrides{DaysOff: []date.Date{d("2026-08-31")}}, nil)
	if c.IsWorkingDay(d("2026-08-31")) {
		t.Error("2026-08-31 configured off")
	}
	// Overrides far outside the precomputed range still apply.
	far := d("2150-06-02") // a Tuesday
	c, _ = New(Overrides{DaysOff: []date.Date{far}}, nil)
	if c.IsWorkingDay(far) || c.AddWorkingDays(far-1, 1) != far+1 {
		t.Error("override in 2150 ignored")
	}
	if _, err := New(Overrides{DaysOff: []date.Date{far}, WorkingDays: []date.Date{far}}, nil); err == nil {
		t.Error("a date both off and working was accepted")
	}
}

func TestTableRows(t *testing.T) {
	c := Default()
	for _, e := range Table() {
		if c.IsWorkingDay(e.Date) != e.Working {
			t.Errorf("%s (%s): working=%v, want %v", e.Date, e.Reason, !e.Working, e.Working)
		}
	}
	first, last := c.Years()
	if first != 2025 || last != 2027 {
		t.Errorf("years %d-%d, want 2025-2027", first, last)
	}
}

// TestTableMatchesMarkdown checks the transcription against the table it
// was transcribed from, kept beside the test.
func TestTableMatchesMarkdown(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "kz-days-off-2025-2027.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[date.Date]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) != 5 {
			continue
		}
		day, err := date.Parse(strings.TrimSpace(f[1]))
		if err != nil {
			continue
		}
		want[day] = strings.Contains(f[3], "**working**")
		if got := day.Weekday().String()[:3]; got != strings.TrimSpace(f[2]) {
			t.Errorf("md: %s is a %s", day, got)
		}
	}
	rows := Table()
	if len(rows) != len(want) {
		t.Errorf("kz.csv has %d rows, the md file %d", len(rows), len(want))
	}
	for _, e := range rows {
		w, ok := want[e.Date]
		if !ok {
			t.Errorf("kz.csv row %s not in the md file", e.Date)
		} else if w != e.Working {
			t.Errorf("%s: working=%v in kz.csv, %v in the md file", e.Date, e.Working, w)
		}
	}
}

// TestFallbackReproducesTable: the fallback rules give exactly the table's
// days off, except what rules cannot know (decree transfers, Kurban Ait) and
// 31 August 2026 (Constitution Day dropped by the June 2026 law).
func TestFallbackReproducesTable(t *testing.T) {
	unknowable := map[string]bool{
		"2025-01-03": true, "2025-01-05": true, // decree transfer
		"2025-06-06": true, "2026-05-27": true, // Kurban Ait
	}
	for y := 2025; y <= 2027; y++ {
		got := map[date.Date]bool{}
		for _, x := range fallbackDaysOff(y, nil) {
			got[x] = true
		}
		if y == 2026 {
			if !got[d("2026-08-31")] {
				t.Error("fallback 2026 should move 30 August (a Sunday) to 31 August")
			}
			delete(got, d("2026-08-31"))
		}
		for _, e := range Table() {
			if e.Date.Year() != y || unknowable[e.Date.String()] {
				continue
			}
			if !got[e.Date] {
				t.Errorf("fallback misses %s (%s)", e.Date, e.Reason)
			}
			delete(got, e.Date)
		}
		for x := range got {
			t.Errorf("fallback has an extra day off %s", x)
		}
	}
}

func TestFallbackYears(t *testing.T) {
	var logs bytes.Buffer
	c, err := New(Overrides{}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c.AddWorkingDays(d("2027-12-30"), 1) // stays in 2027
	if c.FallbackUsed() {
		t.Fatal("warning before leaving the table")
	}
	tests := []struct {
		anchor string
		n      int
		want   string
	}{
		{"2027-12-31", 1, "2028-01-05"},  // 1-2 Jan 2028: Sat, Sun moved to Mon 3, Tue 4
		{"2028-03-20", 1, "2028-03-24"},  // 21-23 Mar 2028 are Tue-Thu
		{"2028-03-14", 1, "2028-03-16"},  // 15 March 2028 off (from 2027)
		{"2030-08-29", 1, "2030-08-30"},  // 30 August no longer a holiday
		{"2024-08-29", 1, "2024-09-02"},  // 30 August 2024, a Friday, still Constitution Day
		{"2029-01-05", 1, "2029-01-08"},  // 7 January 2029 is a Sunday and is not moved
		{"2033-01-06", 1, "2033-01-10"},  // 7 Jan 2033 Fri off
		{"2200-12-15", 1, "2200-12-17"},  // far future, slow path: 16 Dec 2200 is a Tuesday
		{"2200-12-17", -1, "2200-12-15"}, // and back
	}
	for _, tt := range tests {
		got := c.AddWorkingDays(d(tt.anchor), tt.n)
		if got != d(tt.want) {
			t.Errorf("%s %+d wd = %s, want %s", tt.anchor, tt.n, got, tt.want)
		}
	}
	if !c.FallbackUsed() {
		t.Error("FallbackUsed false after 2028 dates")
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings, want exactly one per calendar:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "year=2028") {
		t.Errorf("warning does not name the year: %s", logs.String())
	}
	// A new calendar (the next run) warns again.
	logs.Reset()
	c2, _ := New(Overrides{}, slog.New(slog.NewTextHandler(&logs, nil)))
	c2.IsWorkingDay(d("2024-05-01"))
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("new calendar: %d warnings, want 1", n)
	}
	// A verified year does not warn.
	logs.Reset()
	c3, _ := New(Overrides{VerifiedThrough: 2028}, slog.New(slog.NewTextHandler(&logs, nil)))
	c3.AddWorkingDays(d("2028-06-01"), 5)
	if c3.FallbackUsed() || logs.Len() != 0 {
		t.Errorf("verified 2028 warned: %s", logs.String())
	}
}

// TestFastPathMatchesSlowPath compares the precomputed answers with plain
// day-by-day stepping over the whole precomputed range and beyond.
func TestFastPathMatchesSlowPath(t *testing.T) {
	c, _ := New(Overrides{DaysOff: []date.Date{d("2026-08-31")}, WorkingDays: []date.Date{d("2030-03-02")}}, nil)
	step := func(x date.Date, n int) date.Date {
		s := 1
		if n < 0 {
			s, n = -1, -n
		}
		for n > 0 {
			x += date.Date(s)
			if c.slowWorking(x) {
				n--
			}
		}
		return x
	}
	for x := c.lo - 30; x <= c.hi+30; x += 7 {
		for _, n := range []int{1, 2, 3, 10, -1, -3, -10} {
			if got, want := c.AddWorkingDays(x, n), step(x, n); got != want {
				t.Fatalf("%s %+d: fast %s, slow %s", x, n, got, want)
			}
		}
	}
}

func TestParseTableRejects(t *testing.T) {
	for _, bad := range []string{
		"2025-01-01,Thu,off,x",     // wrong weekday
		"2025-01-04,Sat,off,x",     // weekend listed off
		"2025-01-06,Mon,working,x", // weekday listed working
		"2025-01-06,Mon,maybe,x",
		"2025-13-01,Mon,off,x",
		"2025-01-07,Tue,off,x\n2025-01-06,Mon,off,x",
		"# nothing",
		"2025-01-06,Mon,off,a, b", // a comma in an unquoted reason
		"2025-01-06,Mon,off",
	} {
		if _, err := parseTable([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// kz.csv is CSV: comments, a quoted reason with a comma, and errors that
// name the file's line.
func TestParseTableCSV(t *testing.T) {
	got, err := parseTable([]byte("# header\n\n2025-01-06,Mon,off,\"Holiday, moved\"\n2025-01-11,Sat,working,decree\n"))
	if err != nil || len(got) != 2 || got[0].Reason != "Holiday, moved" || !got[1].Working {
		t.Fatalf("parseTable = %+v, %v", got, err)
	}
	_, err = parseTable([]byte("# header\n2025-01-06,Mon,off,x\n# note\n2025-01-07,Tue,maybe,x\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "kz.csv:4: ") {
		t.Errorf("error %v, want it at kz.csv:4", err)
	}
}

func BenchmarkAddWorkingDays(b *testing.B) {
	c := Default()
	start := d("2025-01-01")
	b.ReportAllocs()
	var sink date.Date
	i := 0
	for b.Loop() {
		sink += c.AddWorkingDays(start+date.Date(i%1000), 1+i%5)
		i++
	}
	_ = sink
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(Overrides{DaysOff: []date.Date{d("2026-08-31")}}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
