package jobs_test

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/config"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
)

var officeEmails = []string{"office@uni.example"}

// fixtureConfig is the built-in configuration without welcome: the tests
// of the evaluation, the delivery and the digests that count notices one
// by one were written before welcome, whose one email to every student
// who entered in the last 30 days would add one to each count. welcome
// itself is tested with the built-in configuration
// (evaluate_reports_test.go), as the night runs it.
var fixtureConfig = func() *config.File {
	f, err := config.Parse("fixture.yaml", []byte("rules:\n  welcome:\n    enabled: false\n"))
	if err != nil {
		panic(err)
	}
	return f
}()

func (e *env) evaluate(t testing.TB, day string) jobs.EvalResult {
	t.Helper()
	ctx := context.Background()
	tx, err := store.BeginSnapshotTx(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	ev := &jobs.Evaluate{Config: fixtureConfig, OfficeEmails: officeEmails}
	res, err := ev.Run(ctx, tx.Conn(), date.MustParse(day), false)
	if err != nil {
		t.Fatalf("evaluate %s: %v", day, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return res
}

// notices returns "rule L<level> R<repeat> audience/channel" for the
// notices of one night, sorted.
func (e *env) notices(t testing.TB, night string) []string {
	t.Helper()
	var rows []struct {
		Rule, Audience, Channel string
		Level, Repeat           int
	}
	if err := e.db.Select(&rows, `SELECT rule, level, repeat, audience, channel FROM sisnotify.notices WHERE night = $1`, night); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Rule + " L" + strconv.Itoa(r.Level) + " R" + strconv.Itoa(r.Repeat) + " " + r.Audience + "/" + r.Channel
	}
	sort.Strings(out)
	return out
}

func TestEvaluateCreatesDueNoticesOnce(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture)
	e.sync(t)

	first := e.evaluate(t, "2026-11-25")
	got := e.notices(t, "2026-11-25")
	want := []string{
		// Entered Friday 20 November, no visit to the office: due Monday
		// 23 (1 working day), step 2 (due+1d) reached on the 24th.
		"arrival-check-in L2 R0 student/email",
		"arrival-check-in L2 R0 student/sms",
		// Passport expires 1 May 2027: due 1 November 2026 (6 months), step 2.
		"passport-renewal L2 R0 student/email",
		"passport-renewal L2 R0 student/sms",
		// Not registered 3 days after entry: step 3 (due+1d = 24 November).
		"registration L3 R0 office/email",
		"registration L3 R0 student/email",
		"registration L3 R0 student/sms",
		// Term trip pending with the dean: step 1 asks the dean, but the
		// Law faculty has no dean email (a data problem), so no notice.
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("notices of the first night:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if first.Opened != 4 || first.StepsDue != 4 {
		t.Errorf("first night: %+v, want 4 obligations opened and 4 steps due", first)
	}
	// Late first sight: the lower steps are recorded as skipped, not sent.
	var skipped int
	if err := e.db.Get(&skipped, `SELECT count(*) FROM sisnotify.obligation_steps WHERE status = 'skipped'`); err != nil {
		t.Fatal(err)
	}
	if skipped != 1+1+2 { // arrival L1, passport L1, registration L1-L2
		t.Errorf("%d skipped steps, want 4", skipped)
	}

	// The same night again changes nothing.
	again := e.evaluate(t, "2026-11-25")
	if again.Opened != 0 || again.Closed != 0 || again.StepsDue != 0 || again.Notices != 0 {
		t.Errorf("rerun of the same night: %+v, want nothing new", again)
	}
	// The next day: no new step.
	if next := e.evaluate(t, "2026-11-26"); next.Notices != 0 {
		t.Errorf("next day created %d notices, want 0: %v", next.Notices, e.notices(t, "2026-11-26"))
	}
	// An earlier night cannot be recorded once a later one is.
	tx, err := store.BeginSnapshotTx(context.Background(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&jobs.Evaluate{}).Run(context.Background(), tx.Conn(), date.MustParse("2026-11-20"), false)
	tx.Rollback()
	if err == nil || !strings.Contains(err.Error(), "later night") {
		t.Errorf("evaluating an earlier night: %v, want ErrPastNight", err)
	}

	// The student registers and visits the office; a new passport arrives.
	e.exec(t, `UPDATE sis.students SET registered_on = '2026-11-26', office_check_in_on = '2026-11-26', passport_expires_on = '2036-05-01' WHERE student_id = 'S1'`)
	e.sync(t)
	closed := e.evaluate(t, "2026-11-27")
	if closed.Closed != 3 || closed.Open != 1 {
		t.Errorf("after registration, check-in and a new passport: %d closed, %d open; want 3 closed and the trip's 1 open", closed.Closed, closed.Open)
	}
	var reasons []string
	if err := e.db.Select(&reasons, `SELECT rule || ':' || close_reason FROM sisnotify.obligations WHERE closed_at IS NOT NULL ORDER BY rule`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(reasons, ",") != "arrival-check-in:resolved,passport-renewal:resolved,registration:resolved" {
		t.Errorf("close reasons %v", reasons)
	}

	// docs/rules.md: a closed obligation never sends anything again, even when
	// the same (rule, subject, anchor) comes back (here: the SIS loses the
	// registration date again).
	e.exec(t, `UPDATE sis.students SET registered_on = NULL WHERE student_id = 'S1'`)
	e.sync(t)
	returned := e.evaluate(t, "2026-11-28")
	// S1, whose facts changed, is the one student the night evaluates; the
	// rules reach its registration again.
	if returned.Notices != 0 || returned.Opened != 0 || returned.Full || returned.Students != 1 || returned.Reached != 1 {
		t.Errorf("a closed obligation that came back: %+v; want it reached by the rules but kept closed, with no notice", returned)
	}
}
