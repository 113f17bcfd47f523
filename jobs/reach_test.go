package jobs_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/store"
)

// reachFixture: two students who have done everything so far.
//
//	S1 registration expires 10 Jan 2027: stay-extension due 11 Dec 2026;
//	   its steps: 27 Nov email, 11 Dec email + SMS, 12 Dec email,
//	   3 Jan email + SMS.
//	S2 entered 20 Nov 2026, not registered: registration (anchor email +
//	   SMS, due-1d SMS only, due+1d email + SMS).
const reachFixture = `
INSERT INTO sis.faculties VALUES ('ENG', 'Engineering', 'Dean Engineering', 'dean.eng@uni.example', 'en');
INSERT INTO sis.students (student_id, given_name, family_name, email, phone, preferred_language, citizenship, visa_regime, faculty_id, enrollment_status, passport_number, passport_expires_on, entered_on, office_check_in_on, registered_on, registration_expires_on)
VALUES
 ('S1', 'Aigerim', 'Bekova', 's1@student.example', '+77011234561', 'ru', 'KG', 'eaeu', 'ENG', 'active', 'P1', '2030-01-01', '2026-09-01', '2026-09-01', '2026-09-02', '2027-01-10'),
 ('S2', 'Wei', 'Zhang', 's2@student.example', '+77011234562', 'en', 'CN', 'visa_free', 'ENG', 'active', 'P2', '2030-01-01', '2026-11-20', '2026-11-20', NULL, NULL);
`

// bounceMail records, as the bounce reader does, a hard bounce of the
// student email msg: it finds the notice by the hash in its Message-ID.
// It returns the notice, and whether the bounce was new.
func bounceMail(t *testing.T, e *env, msg mailtest.Message, at time.Time) (int64, bool) {
	t.Helper()
	ctx := context.Background()
	st := store.New(e.db)
	hash, ok := jobs.MessageHash(msg.MessageID())
	if !ok {
		t.Fatalf("Message-ID %q is not a notice's", msg.MessageID())
	}
	n, ok, err := st.NoticeByMessageHash(ctx, hash)
	if err != nil || !ok {
		t.Fatalf("no notice for %s: %v", msg.MessageID(), err)
	}
	rec, err := st.RecordDeliveryEvent(ctx, store.DeliveryEvent{Source: store.SourceIMAP, ExternalID: "<dsn-" + msg.MessageID() + ">",
		NoticeID: n.ID, Outcome: store.OutcomeBounced, Reason: "5.1.1", Detail: "user unknown", At: at})
	if err != nil {
		t.Fatalf("record bounce: %v", err)
	}
	return n.ID, rec
}

// failSMS records, as the receipts do, that the SMS notice id was never
// delivered.
func failSMS(t *testing.T, e *env, id int64, at time.Time) {
	t.Helper()
	if rec, err := store.New(e.db).RecordDeliveryEvent(context.Background(), store.DeliveryEvent{Source: store.SourceTwilio,
		ExternalID: "SM" + itoa(int(id)) + "/undelivered", NoticeID: id, Outcome: store.OutcomeBounced, Reason: "30003",
		Detail: "Unreachable destination handset", At: at}); err != nil || !rec {
		t.Fatalf("record receipt: %v, %v", rec, err)
	}
}

// studentMail is the student emails the SMTP server got, "to: rule L<level>".
func studentMail(srv *mailtest.Server) []string {
	var out []string
	for _, m := range srv.Messages() {
		if m.Header("X-Sisnotify-Audience") == "student" {
			out = append(out, strings.Join(m.To, ",")+": "+m.Header("X-Sisnotify-Rule")+" L"+m.Header("X-Sisnotify-Level"))
		}
	}
	return out
}

// smsTo is the SMS the outbox got, "to: rule L<level>", sorted (a night
// sends them in any order).
func (r *rig) smsTo(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, m := range r.smsLines(t) {
		meta, _ := m["metadata"].(map[string]any)
		rule, _ := meta["rule"].(string)
		level, _ := meta["level"].(float64)
		out = append(out, m["to"].(string)+": "+rule+" L"+itoa(int(level)))
	}
	slices.Sort(out)
	return out
}

// An address that bounced gets no more email: the step that has an SMS
// sends only that, the step that is email only texts the student instead
// (once, however often the night runs). A new address in the SIS is
// reachable again: the next step emails it.
func TestEmailBounceFallsBackToSMS(t *testing.T) {
	e := newEnv(t)
	e.exec(t, reachFixture)
	e.exec(t, `DELETE FROM sis.students WHERE student_id = 'S2'`)
	e.sync(t)
	r := newRig(t, e)

	e.evaluate(t, "2026-11-27")
	r.night(t)
	mail := r.smtp.Messages()
	if got := studentMail(r.smtp); !slices.Equal(got, []string{"s1@student.example: stay-extension L1"}) || len(mail) != 1 {
		t.Fatalf("27 November: student mail %q", got)
	}
	bounced, _ := bounceMail(t, e, mail[0], time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC))

	// 11 December, a step of email and SMS: the SMS only.
	e.evaluate(t, "2026-12-11")
	if got := e.notices(t, "2026-12-11"); !slices.Equal(got, []string{"stay-extension L2 R0 student/sms"}) {
		t.Errorf("11 December: notices %q, want the SMS only", got)
	}
	// 12 December, a step of email only: texted instead, the notice keyed
	// as the step's SMS.
	e.evaluate(t, "2026-12-12")
	if got := e.notices(t, "2026-12-12"); !slices.Equal(got, []string{"stay-extension L3 R0 student/sms"}) {
		t.Errorf("12 December: notices %q, want the SMS in place of the email", got)
	}
	var key string
	if err := e.db.Get(&key, `SELECT notice_key FROM sisnotify.notices WHERE night = '2026-12-12'`); err != nil || !strings.HasSuffix(key, "/L3/R0/student/sms") {
		t.Errorf("the fallback's key %q, %v", key, err)
	}
	// The night run again, and the next one: nothing more.
	e.evaluate(t, "2026-12-12")
	e.evaluate(t, "2026-12-13")
	var n int
	if err := e.db.Get(&n, `SELECT count(*) FROM sisnotify.notices WHERE night >= '2026-12-11'`); err != nil || n != 2 {
		t.Errorf("%d notices after running 12 December again and 13 December, want 2 (%v)", n, err)
	}
	var toBounced int
	if err := e.db.Get(&toBounced, `SELECT count(*) FROM sisnotify.notices WHERE recipient = 's1@student.example' AND notice_id <> $1`, bounced); err != nil || toBounced != 0 {
		t.Errorf("%d more notices to the address that bounced (%v)", toBounced, err)
	}
	r.night(t)
	if got := r.smsTo(t); !slices.Equal(got, []string{"+77011234561: stay-extension L2", "+77011234561: stay-extension L3"}) {
		t.Errorf("SMS sent %q", got)
	}
	if got := studentMail(r.smtp); len(got) != 1 {
		t.Errorf("student mail after the bounce: %q", got)
	}

	// The SIS gets a new address: the next step emails it, and texts.
	e.exec(t, `UPDATE sis.students SET email = 'aigerim.bekova@student.example' WHERE student_id = 'S1'`)
	e.sync(t)
	if u, err := store.New(e.db).UnreachableContacts(context.Background(), "S1"); err != nil || len(u) != 0 {
		t.Fatalf("after the new address: unreachable %+v, %v", u, err)
	}
	e.evaluate(t, "2027-01-03")
	if got := e.notices(t, "2027-01-03"); !slices.Equal(got, []string{"stay-extension L4 R0 student/email", "stay-extension L4 R0 student/sms"}) {
		t.Errorf("3 January: notices %q, want email and SMS", got)
	}
	r.night(t)
	if got := studentMail(r.smtp); !slices.Equal(got, []string{"s1@student.example: stay-extension L1", "aigerim.bekova@student.example: stay-extension L4"}) {
		t.Errorf("student mail %q, want the new address's", got)
	}
}

// A number whose SMS was not delivered gets no more SMS: the step that
// only texts emails the student instead. When both contacts fail, the
// student gets nothing and the office digest is where they show.
func TestSMSFailureFallsBackToEmail(t *testing.T) {
	e := newEnv(t)
	e.exec(t, reachFixture)
	e.exec(t, `DELETE FROM sis.students WHERE student_id = 'S1'`)
	e.sync(t)
	r := newRig(t, e)

	e.evaluate(t, "2026-11-20")
	r.night(t)
	var sms int64
	if err := e.db.Get(&sms, `SELECT notice_id FROM sisnotify.notices WHERE rule = 'registration' AND channel = 'sms' AND status = 'sent'`); err != nil {
		t.Fatal(err)
	}
	failSMS(t, e, sms, time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))

	var due string
	if err := e.db.Get(&due, `SELECT (due_on - 1)::text FROM sisnotify.obligations WHERE rule = 'registration' AND student_id = 'S2'`); err != nil {
		t.Fatal(err)
	}
	e.evaluate(t, due)
	if got := e.notices(t, due); !slices.Equal(got, []string{"registration L2 R0 office/email", "registration L2 R0 student/email"}) {
		t.Errorf("%s (an SMS-only step): notices %q, want the student's email in place of the SMS", due, got)
	}
	r.night(t)
	if got := studentMail(r.smtp); !slices.Equal(got, []string{"s2@student.example: registration L1", "s2@student.example: registration L2"}) {
		t.Errorf("student mail %q", got)
	}
	if got := r.smsTo(t); len(got) != 1 {
		t.Errorf("SMS %q, want only the first", got)
	}

	// The address bounces too: the next step reaches the student by
	// neither channel.
	for _, m := range r.smtp.Messages() {
		if m.Header("X-Sisnotify-Audience") == "student" && m.Header("X-Sisnotify-Level") == "2" {
			bounceMail(t, e, m, time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC))
		}
	}
	if u, err := store.New(e.db).UnreachableContacts(context.Background(), "S2"); err != nil || len(u) != 2 {
		t.Fatalf("unreachable %+v, %v; want the email and the phone", u, err)
	}
	var after string
	if err := e.db.Get(&after, `SELECT (due_on + 1)::text FROM sisnotify.obligations WHERE rule = 'registration' AND student_id = 'S2'`); err != nil {
		t.Fatal(err)
	}
	e.evaluate(t, after)
	if got := e.notices(t, after); !slices.Equal(got, []string{"registration L3 R0 office/email"}) {
		t.Errorf("%s, both contacts unreachable: notices %q, want the office's only", after, got)
	}
}
