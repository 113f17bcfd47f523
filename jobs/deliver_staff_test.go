package jobs_test

import (
	"bytes"
	"html"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/rules"
)

// staffFixture is baseFixture with a dean address for Law and a stated
// reason on Wei's term trip T1 (submitted 2026-11-20, departure
// 2026-12-01, the dean's decision pending).
const staffFixture = baseFixture + `;
UPDATE sis.faculties SET dean_email = 'dean.law@uni.example' WHERE faculty_id = 'LAW';
UPDATE sis.travel_requests SET reason = 'family event' WHERE request_id = 'T1';`

// Staff notices carry what staff need to act (the student's email and
// phone, a trip's stated reason), and only an office-urgent step of the
// configured ladder is urgent: in the subject of every email it sends,
// and in no other step's. None of it reaches the log.
func TestDeliverStaffNoticesCarryContactsReasonAndUrgency(t *testing.T) {
	e := newEnv(t)
	e.exec(t, staffFixture)
	e.sync(t)
	r := newRig(t, e)
	r.d.OfficeLang = "en"
	r.d.Ladders = jobs.Ladders(rules.Defaults())
	var logs lockedBuffer
	r.d.Log = slog.New(slog.NewJSONHandler(&logs, nil))

	// 25 November: registration of Aigerim (S1) reached level 3 (due+1d:
	// student email and SMS, office urgent); the dean is asked about
	// Wei's trip, level 1 (dean email only).
	e.evaluate(t, "2026-11-25")
	r.night(t)
	office := r.email(t, "registration", "office", 3)
	if !strings.HasPrefix(office.subject, "URGENT:") {
		t.Errorf("office email of an office-urgent step: subject %q, want the URGENT: prefix", office.subject)
	}
	for _, want := range []string{"aigerim@student.example", "+77011234567"} {
		if !strings.Contains(office.text, want) {
			t.Errorf("office email of registration: no %q in\n%s", want, office.text)
		}
	}
	student := r.email(t, "registration", "student", 3)
	if !strings.Contains(student.subject, ":") || strings.Contains(student.text, "+77011234567") {
		t.Errorf("student email: subject %q; it must not carry the staff's contact block:\n%s", student.subject, student.text)
	}
	dean := r.email(t, "travel-dean-approval", "dean", 1)
	if strings.HasPrefix(dean.subject, "URGENT:") {
		t.Errorf("dean email of a step that is not office-urgent: subject %q has the URGENT: prefix", dean.subject)
	}
	for _, want := range []string{"wei@student.example", "+77021234567", "family event"} {
		if !strings.Contains(dean.text, want) {
			t.Errorf("dean email of travel-dean-approval: no %q in\n%s", want, dean.text)
		}
	}

	// 1 December, the departure day: travel-dean-approval level 3
	// (student email, office urgent, dean email). Every email of the
	// step is urgent; the office's names the student's contacts and
	// the trip's reason.
	e.evaluate(t, "2026-12-01")
	r.night(t)
	office = r.email(t, "travel-dean-approval", "office", 3)
	if !strings.HasPrefix(office.subject, "URGENT:") {
		t.Errorf("office email of travel-dean-approval level 3: subject %q, want the URGENT: prefix", office.subject)
	}
	for _, want := range []string{"wei@student.example", "+77021234567", "family event", "T1"} {
		if !strings.Contains(office.text, want) || !strings.Contains(office.html, want) {
			t.Errorf("office email of travel-dean-approval: no %q in its text or HTML\n%s", want, office.text)
		}
	}
	if dean := r.email(t, "travel-dean-approval", "dean", 3); !strings.HasPrefix(dean.subject, "URGENT:") {
		t.Errorf("dean email of an office-urgent step: subject %q, want the URGENT: prefix", dean.subject)
	}

	for _, secret := range []string{"aigerim@student.example", "wei@student.example", "+77011234567", "+77021234567", "family event", "Aigerim", "Bekova"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the delivery log carries %q", secret)
		}
	}
}

// Without a configured ladder no step is urgent: the flag comes from the
// configuration, not from the rule's name or level.
func TestDeliverUrgencyFollowsTheConfiguredLadder(t *testing.T) {
	e := newEnv(t)
	e.exec(t, staffFixture)
	e.sync(t)
	e.evaluate(t, "2026-11-25")
	r := newRig(t, e)
	r.d.OfficeLang = "en"
	ladders := jobs.Ladders(rules.Defaults())
	// The configuration makes registration's level 3 a digest-only step
	// for the office.
	reg := append([]rules.Actions(nil), ladders["registration"]...)
	reg[2] &^= rules.OfficeUrgent
	ladders["registration"] = reg
	r.d.Ladders = ladders
	r.night(t)
	if office := r.email(t, "registration", "office", 3); strings.HasPrefix(office.subject, "URGENT:") {
		t.Errorf("office email of a step the configuration does not make urgent: subject %q", office.subject)
	}
	if student := r.email(t, "registration", "student", 3); strings.HasPrefix(student.subject, "URGENT:") {
		t.Errorf("student email of a step the configuration does not make urgent: subject %q", student.subject)
	}
}

// staffEmail is one email as its reader sees it (HTML unescaped).
type staffEmail struct {
	subject, text, html string
}

// email returns the one email of (rule, audience, level) that the SMTP
// server received, decoded.
func (r *rig) email(t *testing.T, rule, audience string, level int) staffEmail {
	t.Helper()
	var found []mailtest.Message
	for _, m := range r.smtp.Messages() {
		if m.Header("X-Sisnotify-Rule") == rule && m.Header("X-Sisnotify-Audience") == audience && m.Header("X-Sisnotify-Level") == itoa(level) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d emails of %s level %d to the %s, want 1", len(found), rule, level, audience)
	}
	return decode(t, found[0].Data)
}

// decode reads a message into its subject, text and HTML.
func decode(t *testing.T, data []byte) staffEmail {
	t.Helper()
	m := mailtest.Message{Data: data}
	if _, err := m.Parts(); err != nil {
		t.Fatal(err)
	}
	return staffEmail{subject: m.Header("Subject"), text: m.Text(), html: html.UnescapeString(m.HTML())}
}

// lockedBuffer is a log destination that deliveries in flight share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
