package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/internal/nighttest"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/templates"
)

// The university's zone and the console's "now" in the action tests: the
// afternoon after the fixture's night.
var (
	actionZone = actionMustZone("Asia/Almaty")
	actionNow  = time.Date(2026, 11, 25, 15, 0, 0, 0, actionZone)
)

func actionMustZone(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// actionActor is the break-glass login's actor in the audit log.
const actionActor = "break-glass:office"

// actionRequeuer is the console's Requeuer over the store's methods (the
// worker's also queues the notices; that is the worker's part).
type actionRequeuer struct{ st *store.Store }

func (q actionRequeuer) Requeue(ctx context.Context, ids []int64, who string) ([]int64, error) {
	done, err := q.st.RequeueFailedNotices(ctx, ids)
	if err != nil {
		return nil, err
	}
	return done, q.st.RecordRequeue(ctx, who, string(store.NoticeFailed), done)
}

// actionReleaser records the nights released, and by whom.
type actionReleaser struct {
	mu    sync.Mutex
	calls []string // "night who"
	held  map[date.Date]bool
}

// Release records the call; a night marked not held (held[night] false
// and present) is ErrNotHeld.
func (r *actionReleaser) Release(_ context.Context, night date.Date, who string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if held, ok := r.held[night]; ok && !held {
		return ErrNotHeld
	}
	r.calls = append(r.calls, night.String()+" "+who)
	return nil
}

// actionRig is a console over a fixture database, signed in as the office
// by the break-glass login.
type actionRig struct {
	t   *testing.T
	db  *sqlx.DB
	h   *Handler
	rel *actionReleaser
}

func newActionRig(t *testing.T) *actionRig {
	t.Helper()
	db := testDB(t)
	rel := &actionReleaser{}
	h, err := New(Options{DB: db, BreakGlassUser: "office", BreakGlassPassword: "pw", Location: actionZone,
		Now: func() time.Time { return actionNow }, Requeuer: actionRequeuer{store.New(db)}, Releaser: rel})
	if err != nil {
		t.Fatal(err)
	}
	return &actionRig{t: t, db: db, h: h, rel: rel}
}

// post sends form to path as the office, with its CSRF token unless the
// form has one.
func (r *actionRig) post(path string, form url.Values) *httptest.ResponseRecorder {
	r.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", breakGlassCSRF(r.h.opt.BreakGlassPassword, r.h.opt.BreakGlassUser))
	}
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("office", "pw")
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	return w
}

// wantRedirect checks w is a 303 to want.
func wantActionRedirect(t *testing.T, w *httptest.ResponseRecorder, want string) {
	t.Helper()
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != want {
		t.Fatalf("got %d to %q, want 303 to %q; body %s", w.Code, w.Header().Get("Location"), want, w.Body)
	}
}

func (r *actionRig) scalar(dst any, q string, args ...any) {
	r.t.Helper()
	if err := r.db.Get(dst, q, args...); err != nil {
		r.t.Fatalf("%s: %v", q, err)
	}
}

func (r *actionRig) exec(q string, args ...any) {
	r.t.Helper()
	if _, err := r.db.Exec(q, args...); err != nil {
		r.t.Fatalf("%s: %v", q, err)
	}
}

// openWithPending is an open obligation that has pending notices, with its
// student.
func (r *actionRig) openWithPending() (int64, string) {
	r.t.Helper()
	var o struct {
		ID        int64  `db:"obligation_id"`
		StudentID string `db:"student_id"`
	}
	r.scalar(&o, `SELECT o.obligation_id, o.student_id FROM sisnotify.obligations o
		WHERE o.closed_at IS NULL AND EXISTS (SELECT 1 FROM sisnotify.notices n WHERE n.obligation_id = o.obligation_id AND n.status = 'pending')
		ORDER BY o.obligation_id LIMIT 1`)
	return o.ID, o.StudentID
}

// auditRows counts the audit rows of action.
func (r *actionRig) auditRows(action string) int {
	var n int
	r.scalar(&n, `SELECT count(*) FROM sisnotify.audit_log WHERE action = $1`, action)
	return n
}

// mailRig is an SMTP test server and a pool that sends to it.
func actionMail(t *testing.T) (*mailtest.Server, *mail.Pool) {
	t.Helper()
	srv := mailtest.NewServer(t)
	cfg, err := mail.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.From = "International Office <international@uni.example>"
	pool, err := mail.NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return srv, pool
}

// deliverer delivers over pool as of now, in the university's zone.
func actionDeliverer(t *testing.T, db *sqlx.DB, pool *mail.Pool, now time.Time) *jobs.Deliverer {
	t.Helper()
	set, err := templates.New()
	if err != nil {
		t.Fatal(err)
	}
	return &jobs.Deliverer{DB: db, Mail: pool, Templates: set, OfficeLang: "ru", Location: actionZone, Now: func() time.Time { return now }}
}

// nextNight syncs the fixture's SIS (a copy of the test's own) into db and
// evaluates night, as the fixture's first night did.
func actionNextNight(t *testing.T, db *sqlx.DB, night date.Date) {
	t.Helper()
	ctx := context.Background()
	sisDB, err := testenv.Create(ctx, strings.ToLower(strings.NewReplacer("/", "_").Replace(t.Name()))+"_sis", sisTemplate.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = testenv.Drop(context.Background(), sisDB.Name) })
	if _, err := (&jobs.Sync{SIS: sis.NewReader(sisDB.URL), DB: db}).Run(ctx, night); err != nil {
		t.Fatal(err)
	}
	if err := nighttest.Evaluate(ctx, db, night); err != nil {
		t.Fatal(err)
	}
}

// TestCloseObligation: the office closes an obligation handled outside
// the SIS; its pending notices are cancelled, the act is audited once,
// the next night neither reopens it nor sends for it, and the office
// digest lists the closure with its reason.
func TestCloseObligation(t *testing.T) {
	r := newActionRig(t)
	id, student := r.openWithPending()
	var pending, notices int
	r.scalar(&pending, `SELECT count(*) FROM sisnotify.notices WHERE obligation_id = $1 AND status = 'pending'`, id)
	r.scalar(&notices, `SELECT count(*) FROM sisnotify.notices WHERE obligation_id = $1`, id)
	path := "/console/obligations/" + actionItoa(id) + "/close"
	const reason = "registered at the migration service on paper, SIS entry next week"

	wantActionRedirect(t, r.post(path, url.Values{"reason": {"  " + reason + " "}}), "/console/students/"+student+"?done=close")

	var o struct {
		ClosedOn string `db:"closed_on"`
		Reason   string `db:"close_reason"`
		By       string `db:"closed_by"`
		At       bool   `db:"at"`
	}
	r.scalar(&o, `SELECT closed_on::text, close_reason, closed_by, closed_at IS NOT NULL AS at FROM sisnotify.obligations WHERE obligation_id = $1`, id)
	if o != (struct {
		ClosedOn string `db:"closed_on"`
		Reason   string `db:"close_reason"`
		By       string `db:"closed_by"`
		At       bool   `db:"at"`
	}{"2026-11-25", "office", actionActor, true}) {
		t.Fatalf("obligation after close: %+v", o)
	}
	var cancelled, stillPending int
	r.scalar(&cancelled, `SELECT count(*) FROM sisnotify.notices WHERE obligation_id = $1 AND status = 'cancelled' AND last_error = 'closed by the office'`, id)
	r.scalar(&stillPending, `SELECT count(*) FROM sisnotify.notices WHERE obligation_id = $1 AND status = 'pending'`, id)
	if cancelled != pending || stillPending != 0 {
		t.Fatalf("notices: %d cancelled, %d pending; want %d cancelled, none pending", cancelled, stillPending, pending)
	}
	var a struct {
		Actor, Role, Reason string
		Student             string `db:"student_id"`
		Obligation          int64  `db:"obligation_id"`
	}
	r.scalar(&a, `SELECT actor, role, reason, student_id, obligation_id FROM sisnotify.audit_log WHERE action = 'close'`)
	if a.Actor != actionActor || a.Role != "office" || a.Reason != reason || a.Student != student || a.Obligation != id {
		t.Fatalf("audit row: %+v", a)
	}

	// Again: nothing to do, and it says so; no second audit row.
	wantActionRedirect(t, r.post(path, url.Values{"reason": {"again"}}), "/console/students/"+student+"?done=close-already")
	if n := r.auditRows("close"); n != 1 {
		t.Fatalf("%d audit rows after closing twice, want 1", n)
	}

	// A notice of the closed obligation that a worker held while it was
	// closed (pending again after its lease) is cancelled, not sent.
	var nid int64
	r.scalar(&nid, `SELECT min(notice_id) FROM sisnotify.notices WHERE obligation_id = $1 AND channel = 'email'`, id)
	r.exec(`UPDATE sisnotify.notices SET status = 'pending' WHERE notice_id = $1`, nid)
	srv, pool := actionMail(t)
	out, err := actionDeliverer(t, r.db, pool, actionNow).Deliver(context.Background(), nid, false)
	if err != nil || out != jobs.Cancelled || srv.Count() != 0 {
		t.Fatalf("delivery of a closed obligation's notice: %s, %v, %d sent; want cancelled, nothing sent", out, err, srv.Count())
	}

	// The next night: the SIS still shows it open, and it stays closed.
	actionNextNight(t, r.db, date.MustParse("2026-11-26"))
	var after struct {
		Closed  string `db:"closed_on"`
		Reason  string `db:"close_reason"`
		Notices int    `db:"notices"`
		Open    int    `db:"open"`
	}
	r.scalar(&after, `SELECT o.closed_on::text, o.close_reason,
		(SELECT count(*) FROM sisnotify.notices n WHERE n.obligation_id = o.obligation_id) AS notices,
		(SELECT count(*) FROM sisnotify.obligations p WHERE p.rule = o.rule AND p.subject_id = o.subject_id AND p.anchor = o.anchor AND p.closed_at IS NULL) AS open
		FROM sisnotify.obligations o WHERE o.obligation_id = $1`, id)
	if after.Closed != "2026-11-25" || after.Reason != "office" || after.Notices != notices || after.Open != 0 {
		t.Fatalf("after the next night: %+v; want closed 2026-11-25 by the office, %d notices, none open", after, notices)
	}
	var seen string
	r.scalar(&seen, `SELECT coalesce(max(last_seen_on)::text, '') FROM sisnotify.obligations WHERE closed_at IS NULL`)
	if seen != "2026-11-26" {
		t.Fatalf("the next night was not evaluated: last seen %q", seen)
	}

	// The office digest of that night lists the closure with its reason.
	dsrv, dpool := actionMail(t)
	set, err := templates.New()
	if err != nil {
		t.Fatal(err)
	}
	dig := &jobs.Digest{DB: r.db, Mail: dpool, Templates: set, OfficeLang: "en", OfficeEmails: []string{"office@uni.example"}, Location: actionZone}
	if _, err := dig.Run(context.Background(), date.MustParse("2026-11-26")); err != nil {
		t.Fatal(err)
	}
	var text string
	for _, m := range dsrv.Messages() {
		if len(m.To) == 1 && m.To[0] == "office@uni.example" && m.Header("X-Sisnotify-Kind") == "digest" {
			text = m.Text()
		}
	}
	for _, want := range []string{"== Closed by the office: 1 ==", student, "by the office (" + actionActor + "): " + reason} {
		if !strings.Contains(text, want) {
			t.Errorf("office digest lacks %q:\n%s", want, text)
		}
	}
}

// TestSnoozeObligation: a snoozed obligation's student notices are not
// claimed or queued until the date, in the university's zone; its office
// notices go as usual; a second snooze replaces the date; on the date the
// student's notice goes.
func TestSnoozeObligation(t *testing.T) {
	r := newActionRig(t)
	ctx := context.Background()
	var s struct {
		Notice     int64  `db:"notice_id"`
		Obligation int64  `db:"obligation_id"`
		Student    string `db:"student_id"`
		Recipient  string `db:"recipient"`
	}
	r.scalar(&s, `SELECT notice_id, obligation_id, student_id, recipient FROM sisnotify.notices
		WHERE audience = 'student' AND channel = 'email' AND status = 'pending' ORDER BY notice_id LIMIT 1`)
	// Its office notice: the fixture's, or one of this test's.
	r.exec(`INSERT INTO sisnotify.notices (notice_key, obligation_id, rule, level, repeat, student_id, subject_id, audience, channel, recipient, language, due_on, night)
		SELECT notice_key || '/test-office', obligation_id, rule, level, repeat, student_id, subject_id, 'office', 'email', 'office@uni.example', NULL, due_on, night
		FROM sisnotify.notices n WHERE notice_id = $1
		  AND NOT EXISTS (SELECT 1 FROM sisnotify.notices o WHERE o.obligation_id = n.obligation_id AND o.audience = 'office' AND o.status = 'pending')`, s.Notice)
	var office int64
	r.scalar(&office, `SELECT min(notice_id) FROM sisnotify.notices WHERE obligation_id = $1 AND audience = 'office' AND status = 'pending'`, s.Obligation)
	path := "/console/obligations/" + actionItoa(s.Obligation) + "/snooze"

	wantActionRedirect(t, r.post(path, url.Values{"until": {"2026-12-01"}, "reason": {"the student is in hospital"}}), "/console/students/"+s.Student+"?done=snooze")
	var o struct {
		Until string `db:"snoozed_until"`
		By    string `db:"snoozed_by"`
	}
	r.scalar(&o, `SELECT snoozed_until::text, snoozed_by FROM sisnotify.obligations WHERE obligation_id = $1`, s.Obligation)
	if o.Until != "2026-12-01" || o.By != actionActor {
		t.Fatalf("obligation after snooze: %+v", o)
	}
	var held time.Time
	r.scalar(&held, `SELECT not_before FROM sisnotify.notices WHERE notice_id = $1`, s.Notice)
	if want := time.Date(2026, 12, 1, 0, 0, 0, 0, actionZone); !held.Equal(want) {
		t.Fatalf("student notice held until %s, want %s", held, want)
	}
	var detail string
	r.scalar(&detail, `SELECT detail->>'until' FROM sisnotify.audit_log WHERE action = 'snooze' AND obligation_id = $1`, s.Obligation)
	if detail != "2026-12-01" {
		t.Fatalf("audit detail until %q", detail)
	}

	// The queue gets the office notice, not the student's.
	queued := func(today string) map[int64]bool {
		t.Helper()
		rows, err := store.New(r.db).ClaimableNotices(ctx, store.NoticeLease, date.MustParse(today))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[int64]bool{}
		for rows.Next() {
			var n store.QueuedNotice
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			out[n.ID] = true
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if q := queued("2026-11-25"); q[s.Notice] || !q[office] {
		t.Fatalf("queued while snoozed: student %v, office %v; want false, true", q[s.Notice], q[office])
	}

	srv, pool := actionMail(t)
	d := actionDeliverer(t, r.db, pool, actionNow)
	if out, err := d.Deliver(ctx, s.Notice, false); err != nil || out != jobs.Skipped {
		t.Fatalf("student notice while snoozed: %s, %v; want skipped", out, err)
	}
	if out, err := d.Deliver(ctx, office, false); err != nil || out != jobs.Sent {
		t.Fatalf("office notice while snoozed: %s, %v; want sent", out, err)
	}
	for _, m := range srv.Messages() {
		if m.To[0] == s.Recipient {
			t.Fatalf("the student got a notice while snoozed")
		}
	}
	if srv.Count() != 1 {
		t.Fatalf("%d messages sent, want the office's one", srv.Count())
	}
	if st, _, _ := store.New(r.db).NoticeStatusOf(ctx, s.Notice); st != store.NoticePending {
		t.Fatalf("snoozed notice is %s, want pending", st)
	}

	// Snoozed again: the new date replaces the old.
	wantActionRedirect(t, r.post(path, url.Values{"until": {"2026-12-05"}, "reason": {"still in hospital"}}), "/console/students/"+s.Student+"?done=snooze")
	r.scalar(&o, `SELECT snoozed_until::text, snoozed_by FROM sisnotify.obligations WHERE obligation_id = $1`, s.Obligation)
	if o.Until != "2026-12-05" || r.auditRows("snooze") != 2 {
		t.Fatalf("after a second snooze: until %s, %d audit rows", o.Until, r.auditRows("snooze"))
	}
	// 18:30 UTC on the 4th is 23:30 in Almaty, the eve of the date there:
	// still snoozed.
	eve := time.Date(2026, 12, 4, 18, 30, 0, 0, time.UTC)
	if out, err := actionDeliverer(t, r.db, pool, eve).Deliver(ctx, s.Notice, false); err != nil || out != jobs.Skipped {
		t.Fatalf("on the eve: %s, %v; want skipped", out, err)
	}
	// 19:30 UTC on the 4th is 00:30 on the 5th in Almaty: the date.
	if !queued("2026-12-05")[s.Notice] {
		t.Fatalf("not queued on the date")
	}
	on := time.Date(2026, 12, 4, 19, 30, 0, 0, time.UTC)
	if out, err := actionDeliverer(t, r.db, pool, on).Deliver(ctx, s.Notice, false); err != nil || out != jobs.Sent {
		t.Fatalf("on the date: %s, %v; want sent", out, err)
	}
	got := false
	for _, m := range srv.Messages() {
		got = got || m.To[0] == s.Recipient
	}
	if !got {
		t.Fatalf("the student's notice did not arrive on the date")
	}
}

// TestSnoozedNoticesOfALaterNight: a student notice that a later night
// creates for a snoozed obligation is held until the date (not_before),
// so that the night does not wait for it, and is not queued.
func TestSnoozedNoticesOfALaterNight(t *testing.T) {
	r := newActionRig(t)
	var ids []int64
	if err := r.db.Select(&ids, `SELECT obligation_id FROM sisnotify.obligations WHERE closed_at IS NULL ORDER BY obligation_id`); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if w := r.post("/console/obligations/"+actionItoa(id)+"/snooze", url.Values{"until": {"2026-12-20"}, "reason": {"holidays"}}); w.Code != http.StatusSeeOther {
			t.Fatalf("snooze %d: %d %s", id, w.Code, w.Body)
		}
	}
	actionNextNight(t, r.db, date.MustParse("2026-11-26"))
	var created, free int
	r.scalar(&created, `SELECT count(*) FROM sisnotify.notices WHERE night = '2026-11-26' AND audience = 'student'`)
	r.scalar(&free, `SELECT count(*) FROM sisnotify.notices n JOIN sisnotify.obligations o USING (obligation_id)
		WHERE n.night = '2026-11-26' AND n.audience = 'student' AND o.snoozed_until IS NOT NULL AND n.not_before IS NULL`)
	if free != 0 {
		t.Fatalf("%d of %d student notices of snoozed obligations created on the next night are not held", free, created)
	}
	t.Logf("%d student notices created on the next night for %d snoozed obligations, all held", created, len(ids))

	// The digests keep listing them, marked snoozed.
	srv, pool := actionMail(t)
	set, err := templates.New()
	if err != nil {
		t.Fatal(err)
	}
	dig := &jobs.Digest{DB: r.db, Mail: pool, Templates: set, OfficeLang: "en", OfficeEmails: []string{"office@uni.example"}, Location: actionZone}
	if _, err := dig.Run(context.Background(), date.MustParse("2026-11-26")); err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, m := range srv.Messages() {
		if m.Header("X-Sisnotify-Kind") != "digest" || m.To[0] != "office@uni.example" {
			continue
		}
		text, _, _ := strings.Cut(m.Text(), "== Notices that failed")
		for _, line := range strings.Split(text, "\n") {
			if !strings.HasPrefix(line, "- ") || strings.Contains(line, " closed ") {
				continue
			}
			rows++
			if !strings.Contains(line, "student reminders snoozed until 20 December 2026") {
				t.Errorf("a row of a snoozed obligation not marked: %s", line)
			}
		}
	}
	if rows == 0 {
		t.Fatalf("no digest rows")
	}
}

func actionItoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestRetryNotice: a failed notice goes back to pending through the
// Requeuer, audited.
func TestRetryNotice(t *testing.T) {
	r := newActionRig(t)
	var n struct {
		ID      int64  `db:"notice_id"`
		Student string `db:"student_id"`
	}
	r.scalar(&n, `SELECT notice_id, student_id FROM sisnotify.notices ORDER BY notice_id LIMIT 1`)
	r.exec(`UPDATE sisnotify.notices SET status = 'failed', last_error = '550 5.1.1 no such user', error_class = 'permanent' WHERE notice_id = $1`, n.ID)
	wantActionRedirect(t, r.post("/console/notices/"+actionItoa(n.ID)+"/retry", nil), "/console/students/"+n.Student+"?done=retry")
	if st, _, _ := store.New(r.db).NoticeStatusOf(context.Background(), n.ID); st != store.NoticePending {
		t.Fatalf("retried notice is %s, want pending", st)
	}
	var a struct {
		Actor   string `db:"actor"`
		Student string `db:"student_id"`
		Notice  int64  `db:"notice_id"`
	}
	r.scalar(&a, `SELECT actor, student_id, notice_id FROM sisnotify.audit_log WHERE action = 'retry'`)
	if a.Actor != actionActor || a.Student != n.Student || a.Notice != n.ID {
		t.Fatalf("audit row: %+v", a)
	}
	var requeues int
	r.scalar(&requeues, `SELECT count(*) FROM sisnotify.notice_requeues WHERE who = $1 AND $2 = ANY(notice_ids)`, actionActor, n.ID)
	if requeues != 1 {
		t.Fatalf("%d re-queue records, want 1", requeues)
	}
	// Pending now: nothing to retry.
	if w := r.post("/console/notices/"+actionItoa(n.ID)+"/retry", nil); w.Code != http.StatusConflict {
		t.Fatalf("retry of a pending notice: %d, want 409", w.Code)
	}
	if r.auditRows("retry") != 1 {
		t.Fatalf("a refused retry was audited")
	}
}

// TestReleaseNight: the Releaser is called with the night and the actor,
// audited.
func TestReleaseNight(t *testing.T) {
	r := newActionRig(t)
	wantActionRedirect(t, r.post("/console/nights/2026-11-25/release", url.Values{"reason": {"the SIS export was checked by hand"}}), "/console/nights?done=release")
	if len(r.rel.calls) != 1 || r.rel.calls[0] != "2026-11-25 "+actionActor {
		t.Fatalf("releaser calls %q", r.rel.calls)
	}
	var night string
	r.scalar(&night, `SELECT night::text FROM sisnotify.audit_log WHERE action = 'release' AND actor = $1`, actionActor)
	if night != "2026-11-25" {
		t.Fatalf("audit night %q", night)
	}
	// A night the guard does not hold: 409, said plainly, nothing audited.
	r.rel.held = map[date.Date]bool{date.MustParse("2026-11-24"): false}
	w := r.post("/console/nights/2026-11-24/release", url.Values{"reason": {"checked"}})
	var n int
	r.scalar(&n, `SELECT count(*) FROM sisnotify.audit_log WHERE action = 'release'`)
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), t2("ru", "action.err.notheld")) || n != 1 {
		t.Fatalf("releasing a night not held: %d, %d release audit rows; body %.300s", w.Code, n, w.Body.String())
	}
}

// TestActionBadInput: a wrong input answers 400 (or 404, 409) with a page
// in the viewer's language, and changes nothing.
func TestActionBadInput(t *testing.T) {
	r := newActionRig(t)
	id, _ := r.openWithPending()
	var closedID int64
	r.scalar(&closedID, `SELECT max(obligation_id) FROM sisnotify.obligations WHERE closed_at IS NULL`)
	if closedID == id {
		t.Fatalf("the fixture has one open obligation")
	}
	if w := r.post("/console/obligations/"+actionItoa(closedID)+"/close", url.Values{"reason": {"x"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("close: %d", w.Code)
	}
	var pendingNotice int64
	r.scalar(&pendingNotice, `SELECT min(notice_id) FROM sisnotify.notices WHERE status = 'pending'`)
	state := func() string {
		var s string
		r.scalar(&s, `SELECT md5(
			(SELECT string_agg(concat_ws('|', obligation_id, closed_at, close_reason, closed_by, snoozed_until, snoozed_by), ',' ORDER BY obligation_id) FROM sisnotify.obligations) ||
			(SELECT string_agg(concat_ws('|', notice_id, status, not_before, last_error), ',' ORDER BY notice_id) FROM sisnotify.notices) ||
			(SELECT count(*) FROM sisnotify.audit_log)::text)`)
		return s
	}
	before := state()
	ob := "/console/obligations/" + actionItoa(id)
	today := date.FromTime(actionNow)
	for _, c := range []struct {
		name, path string
		form       url.Values
		code       int
		says       string // in Russian, the office's language
	}{
		{"close without reason", ob + "/close", url.Values{"reason": {"  "}}, 400, "Укажите причину"},
		{"close with a long reason", ob + "/close", url.Values{"reason": {strings.Repeat("я", 501)}}, 400, "не более 500"},
		{"close unknown", "/console/obligations/999999999/close", url.Values{"reason": {"x"}}, 404, "Такой обязанности нет"},
		{"close bad id", "/console/obligations/abc/close", url.Values{"reason": {"x"}}, 404, "Такой обязанности нет"},
		{"snooze bad date", ob + "/snooze", url.Values{"until": {"2026-13-01"}, "reason": {"x"}}, 400, "ГГГГ-ММ-ДД"},
		{"snooze no date", ob + "/snooze", url.Values{"reason": {"x"}}, 400, "ГГГГ-ММ-ДД"},
		{"snooze today", ob + "/snooze", url.Values{"until": {today.String()}, "reason": {"x"}}, 400, "позже сегодняшней"},
		{"snooze past", ob + "/snooze", url.Values{"until": {"2026-11-01"}, "reason": {"x"}}, 400, "позже сегодняшней"},
		{"snooze 91 days", ob + "/snooze", url.Values{"until": {today.AddDays(91).String()}, "reason": {"x"}}, 400, "90 дней"},
		{"snooze without reason", ob + "/snooze", url.Values{"until": {"2026-12-01"}}, 400, "Укажите причину"},
		{"snooze unknown", "/console/obligations/999999999/snooze", url.Values{"until": {"2026-12-01"}, "reason": {"x"}}, 404, "Такой обязанности нет"},
		{"snooze closed", "/console/obligations/" + actionItoa(closedID) + "/snooze", url.Values{"until": {"2026-12-01"}, "reason": {"x"}}, 409, "уже закрыта"},
		{"retry unknown", "/console/notices/999999999/retry", nil, 404, "Такого уведомления нет"},
		{"retry pending", "/console/notices/" + actionItoa(pendingNotice) + "/retry", nil, 409, "повторять нечего"},
		{"release bad night", "/console/nights/yesterday/release", url.Values{"reason": {"x"}}, 400, "ГГГГ-ММ-ДД"},
		{"release without reason", "/console/nights/2026-11-25/release", nil, 400, "Укажите причину"},
		{"close without CSRF", ob + "/close", url.Values{"reason": {"x"}, "csrf": {"forged"}}, 403, ""},
	} {
		w := r.post(c.path, c.form)
		if w.Code != c.code || !strings.Contains(w.Body.String(), c.says) {
			t.Errorf("%s: %d %q; want %d saying %q", c.name, w.Code, w.Body, c.code, c.says)
		}
		if c.code == 400 && !strings.Contains(w.Body.String(), `<html lang="ru">`) {
			t.Errorf("%s: the page has no language: %s", c.name, w.Body)
		}
	}
	if after := state(); after != before {
		t.Fatalf("a refused action changed something")
	}
	if len(r.rel.calls) != 0 {
		t.Fatalf("a refused release was released: %q", r.rel.calls)
	}
	// 90 days is the limit, and allowed.
	if w := r.post(ob+"/snooze", url.Values{"until": {today.AddDays(90).String()}, "reason": {"x"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("snooze of 90 days: %d", w.Code)
	}
}

// TestActionsRefuseDeans: a dean (or anyone not signed in) cannot act.
func TestActionsRefuseDeans(t *testing.T) {
	r := newActionRig(t)
	id, _ := r.openWithPending()
	dean := &Viewer{Email: "dean@uni.example", Role: RoleDean, FacultyIDs: []string{"F01"}, CSRF: "t", Lang: "en"}
	form := url.Values{"reason": {"x"}, "csrf": {"t"}, "until": {"2026-12-01"}}
	for _, c := range []struct {
		path string
		fn   http.HandlerFunc
	}{
		{"/console/obligations/" + actionItoa(id) + "/close", r.h.closeObligation},
		{"/console/obligations/" + actionItoa(id) + "/snooze", r.h.snoozeObligation},
		{"/console/notices/1/retry", r.h.retryNotice},
		{"/console/nights/2026-11-25/release", r.h.releaseNight},
	} {
		req := httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// The mux fills the path's values; here the test does.
		pat := &http.ServeMux{}
		pat.HandleFunc("POST /console/obligations/{id}/close", c.fn)
		pat.HandleFunc("POST /console/obligations/{id}/snooze", c.fn)
		pat.HandleFunc("POST /console/notices/{id}/retry", c.fn)
		pat.HandleFunc("POST /console/nights/{night}/release", c.fn)
		w := httptest.NewRecorder()
		pat.ServeHTTP(w, req.WithContext(withViewer(req.Context(), dean)))
		if w.Code != http.StatusForbidden {
			t.Errorf("dean %s: %d, want 403", c.path, w.Code)
		}
		// Not signed in at all.
		req = httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w = httptest.NewRecorder()
		r.h.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("anonymous %s: %d, want 401", c.path, w.Code)
		}
	}
	if r.auditRows("close")+r.auditRows("snooze")+r.auditRows("retry")+r.auditRows("release") != 0 || len(r.rel.calls) != 0 {
		t.Fatalf("a refused action was done")
	}
}
