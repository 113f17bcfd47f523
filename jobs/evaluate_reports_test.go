package jobs_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
)

// report records a student's report as the student page does, and returns
// its id.
func (e *env) report(t testing.TB, student, kind, reportedOn string, extra map[string]any) int64 {
	t.Helper()
	var obligation, moved any
	if v, ok := extra["obligation_id"]; ok {
		obligation = v
	}
	if v, ok := extra["moved_on"]; ok {
		moved = v
	}
	var id int64
	if err := e.db.Get(&id, `INSERT INTO sisnotify.student_reports (student_id, kind, obligation_id, moved_on, reported_on, dedup_key)
		VALUES ($1, $2, $3::bigint, $4::date, $5::date, $1 || '/' || $2 || '/' || $5::text || '/' || coalesce($3::bigint::text, '') || coalesce($4::date::text, '')) RETURNING report_id`,
		student, kind, obligation, moved, reportedOn); err != nil {
		t.Fatal(err)
	}
	return id
}

// evaluateDefault is a night with the built-in configuration (welcome on).
func (e *env) evaluateDefault(t testing.TB, day string) jobs.EvalResult {
	t.Helper()
	ctx := context.Background()
	tx, err := store.BeginSnapshotTx(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	res, err := (&jobs.Evaluate{OfficeEmails: officeEmails}).Run(ctx, tx.Conn(), date.MustParse(day), false)
	if err != nil {
		t.Fatalf("evaluate %s: %v", day, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return res
}

func (e *env) studentNotices(t testing.TB, rule string) []string {
	t.Helper()
	var out []string
	if err := e.db.Select(&out, `SELECT night::text || ' L' || level || ' ' || audience || '/' || channel FROM sisnotify.notices
		WHERE rule = $1 ORDER BY night, level, audience, channel`, rule); err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) reportState(t testing.TB, id int64) string {
	t.Helper()
	var s string
	if err := e.db.Get(&s, `SELECT state || ':' || coalesce(decided_by, '') FROM sisnotify.student_reports WHERE report_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) obligationID(t testing.TB, rule, student string) int64 {
	t.Helper()
	var id int64
	if err := e.db.Get(&id, `SELECT obligation_id FROM sisnotify.obligations WHERE rule = $1 AND student_id = $2 ORDER BY obligation_id DESC LIMIT 1`, rule, student); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestWelcomeOncePerEntry(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture+`; INSERT INTO sis.students (student_id, given_name, family_name, email, visa_regime, faculty_id, enrollment_status, entered_on)
		VALUES ('S3', 'Old', 'Timer', 'old@student.example', 'eaeu', 'ENG', 'active', '2026-10-01')`)
	e.sync(t)
	e.evaluateDefault(t, "2026-11-25")
	e.evaluateDefault(t, "2026-11-26")
	var got []string
	if err := e.db.Select(&got, `SELECT student_id || ' ' || night || ' ' || audience || '/' || channel FROM sisnotify.notices WHERE rule = 'welcome' ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	// S1 entered on 20 November: welcomed once; S3 entered 55 days before
	// the first night: not welcomed; S2 has no entry date.
	if want := []string{"S1 2026-11-25 student/email"}; !slices.Equal(got, want) {
		t.Errorf("welcome notices %q, want %q", got, want)
	}
}

// A done report pauses the obligation's student notices for report_pause
// (5 working days); then the ladder resumes with the step the pause held
// back, and the report lapses.
func TestDoneReportPausesAndLapses(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture)
	e.sync(t)
	// S1 entered Friday 20 November: registration due 23 November
	// (3 days), step 2 (due-1d) on the 22nd, step 3 (due+1d) on the 24th.
	e.evaluate(t, "2026-11-20") // step 1
	ob := e.obligationID(t, "registration", "S1")
	rep := e.report(t, "S1", "done", "2026-11-21", map[string]any{"obligation_id": ob})
	e.evaluate(t, "2026-11-22") // step 2: office urgent, but no student SMS
	e.evaluate(t, "2026-11-24") // step 3: office urgent, no student notice
	want := []string{
		"2026-11-20 L1 student/email", "2026-11-20 L1 student/sms",
		"2026-11-22 L2 office/email",
		"2026-11-24 L3 office/email",
	}
	if got := e.studentNotices(t, "registration"); !slices.Equal(got, want) {
		t.Fatalf("during the pause: %q, want %q", got, want)
	}
	if s := e.reportState(t, rep); s != "open:" {
		t.Errorf("report during the pause: %s", s)
	}
	// 21 November (Saturday) + 5 working days = Friday 27 November.
	e.evaluate(t, "2026-11-26")
	if got := e.studentNotices(t, "registration"); len(got) != len(want) {
		t.Fatalf("still paused on the 26th: %q", got)
	}
	e.evaluate(t, "2026-11-27")
	want = append(want, "2026-11-27 L3 student/email", "2026-11-27 L3 student/sms")
	if got := e.studentNotices(t, "registration"); !slices.Equal(got, want) {
		t.Fatalf("after the pause: %q, want %q", got, want)
	}
	if s := e.reportState(t, rep); s != "lapsed:sis" {
		t.Errorf("report after the pause: %s, want lapsed", s)
	}
	// Once: the next night sends nothing more.
	e.evaluate(t, "2026-11-28")
	if got := e.studentNotices(t, "registration"); !slices.Equal(got, want) {
		t.Fatalf("the night after: %q, want %q", got, want)
	}
}

// The office's reject resumes the ladder at the next evaluation; its
// confirm closes the obligation, which never reopens; the SIS showing it
// done first settles the report as confirmed by the SIS.
func TestDoneReportRejectConfirmAndSIS(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.exec(t, baseFixture)
	e.sync(t)
	e.evaluate(t, "2026-11-20")
	ob := e.obligationID(t, "registration", "S1")
	s := store.New(e.db)

	rep := e.report(t, "S1", "done", "2026-11-21", map[string]any{"obligation_id": ob})
	e.evaluate(t, "2026-11-22")
	if got := e.studentNotices(t, "registration"); slices.Contains(got, "2026-11-22 L2 student/sms") {
		t.Fatalf("paused, yet a student notice: %q", got)
	}
	if _, err := s.ReportsReject(ctx, date.MustParse("2026-11-22"), store.OfficeActionAudit{Actor: "anna", Role: "office", Reason: "not in the SIS, and no paper"}, rep); err != nil {
		t.Fatal(err)
	}
	if st := e.reportState(t, rep); st != "rejected:anna" {
		t.Errorf("rejected report: %s", st)
	}
	e.evaluate(t, "2026-11-23")
	if got := e.studentNotices(t, "registration"); !slices.Contains(got, "2026-11-23 L2 student/sms") {
		t.Fatalf("after reject: %q, want the held step-2 SMS", got)
	}

	// A second report, confirmed: the obligation closes for the office.
	rep2 := e.report(t, "S1", "done", "2026-11-23", map[string]any{"obligation_id": ob})
	res, err := s.ReportsConfirm(ctx, date.MustParse("2026-11-23"), store.OfficeActionAudit{Actor: "anna", Role: "office", Reason: "registration paper seen"}, rep2)
	if err != nil || !res.Done {
		t.Fatalf("confirm: %+v, %v", res, err)
	}
	e.evaluate(t, "2026-11-24")
	var reason string
	if err := e.db.Get(&reason, `SELECT close_reason FROM sisnotify.obligations WHERE obligation_id = $1`, ob); err != nil || reason != "office" {
		t.Fatalf("closed: %q %v", reason, err)
	}
	if got := e.studentNotices(t, "registration"); slices.ContainsFunc(got, func(n string) bool { return strings.HasPrefix(n, "2026-11-24") }) {
		t.Errorf("confirmed, yet notices on the 24th: %q", got)
	}
	var audits int
	if err := e.db.Get(&audits, `SELECT count(*) FROM sisnotify.audit_log WHERE action IN ('report-confirm', 'report-reject') AND student_id = 'S1'`); err != nil || audits != 2 {
		t.Errorf("%d audit rows (%v), want 2", audits, err)
	}

	// S1's arrival check-in, reported done; the SIS records it first.
	ci := e.obligationID(t, "arrival-check-in", "S1")
	rep3 := e.report(t, "S1", "done", "2026-11-24", map[string]any{"obligation_id": ci})
	e.exec(t, `UPDATE sis.students SET office_check_in_on = '2026-11-24' WHERE student_id = 'S1'`)
	e.sync(t)
	e.evaluate(t, "2026-11-25")
	if st := e.reportState(t, rep3); st != "confirmed:sis" {
		t.Errorf("report the SIS agreed with: %s, want confirmed:sis", st)
	}
}

// An address-changed report opens address-registration at once, anchored
// on the reported date; the SIS's moved_on within 7 days is the same
// move, one beyond 7 days a new one.
func TestAddressReport(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture)
	e.sync(t)
	e.report(t, "S1", "address-changed", "2026-11-23", map[string]any{"moved_on": "2026-11-22"})
	e.evaluate(t, "2026-11-23")
	anchors := func() []string {
		var out []string
		if err := e.db.Select(&out, `SELECT anchor::text || ' ' || coalesce(close_reason, 'open') FROM sisnotify.obligations
			WHERE rule = 'address-registration' ORDER BY anchor`); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := anchors(); !slices.Equal(got, []string{"2026-11-22 open"}) {
		t.Fatalf("after the report: %q", got)
	}
	// The SIS records the move 3 days later than reported: the same one.
	e.exec(t, `UPDATE sis.students SET moved_on = '2026-11-25' WHERE student_id = 'S1'`)
	e.sync(t)
	e.evaluate(t, "2026-11-26")
	if got := anchors(); !slices.Equal(got, []string{"2026-11-22 open"}) {
		t.Fatalf("SIS within 7 days: %q, want the one obligation", got)
	}
	// A move the SIS records 10 days after the reported one is a new move.
	e.exec(t, `UPDATE sis.students SET moved_on = '2026-12-02' WHERE student_id = 'S1'`)
	e.sync(t)
	e.evaluate(t, "2026-12-02")
	if got := anchors(); !slices.Equal(got, []string{"2026-11-22 new_anchor", "2026-12-02 open"}) {
		t.Fatalf("SIS beyond 7 days: %q", got)
	}
	// Registered: the obligation closes, and the report is settled.
	e.exec(t, `UPDATE sis.students SET address_registered_on = '2026-12-03' WHERE student_id = 'S1'`)
	e.sync(t)
	e.evaluate(t, "2026-12-03")
	var state string
	if err := e.db.Get(&state, `SELECT state FROM sisnotify.student_reports WHERE kind = 'address-changed'`); err != nil || state != "confirmed" {
		t.Errorf("address report %q %v, want confirmed", state, err)
	}
}

// A lost-documents report, evaluated for its student at once, creates the
// office's urgent email; delivered, it carries the rule's header.
func TestEvaluateStudentLostDocuments(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.exec(t, baseFixture)
	e.sync(t)
	e.evaluate(t, "2026-11-24")
	rep := e.report(t, "S2", "lost-documents", "2026-11-25", nil)
	ids, err := jobs.EvaluateStudent(ctx, e.db, fixtureConfig, officeEmails, "S2", date.MustParse("2026-11-25"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := e.db.Select(&got, `SELECT rule || ' ' || subject_id || ' L' || level || ' ' || audience || '/' || channel || ' ' || recipient
		FROM sisnotify.notices WHERE notice_id = ANY($1) ORDER BY notice_id`, pq.Array(ids)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"document-loss R" + itoa(int(rep)) + " L1 student/email wei@student.example",
		"document-loss R" + itoa(int(rep)) + " L1 office/email office@uni.example",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("notices of EvaluateStudent: %q, want %q", got, want)
	}
	// Only S2 was evaluated: S1's obligations are as the night left them.
	var s1 int
	if err := e.db.Get(&s1, `SELECT count(*) FROM sisnotify.obligations WHERE student_id = 'S1' AND last_seen_on = '2026-11-25'`); err != nil || s1 != 0 {
		t.Errorf("S1 touched: %d %v", s1, err)
	}
	// Again: nothing new.
	if again, err := jobs.EvaluateStudent(ctx, e.db, fixtureConfig, officeEmails, "S2", date.MustParse("2026-11-25")); err != nil || len(again) != 0 {
		t.Errorf("again: %v %v", again, err)
	}
	// The night of the 25th creates no second one either.
	e.evaluate(t, "2026-11-25")
	var n int
	if err := e.db.Get(&n, `SELECT count(*) FROM sisnotify.notices WHERE rule = 'document-loss'`); err != nil || n != 2 {
		t.Errorf("%d document-loss notices after the night, want 2", n)
	}

	r := newRig(t, e)
	if _, err := r.q.Run(ctx, time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	r.drain(t)
	var office []string
	for _, m := range r.smtp.Messages() {
		if m.Header("X-Sisnotify-Rule") == "document-loss" && m.Header("X-Sisnotify-Audience") == "office" {
			office = append(office, m.Header("X-Sisnotify-Level"))
		}
	}
	if !slices.Equal(office, []string{"1"}) {
		t.Errorf("office document-loss emails at levels %q, want one at level 1", office)
	}
}
