package receipts_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/internal/nighttest"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

var fixture nighttest.Fixture

func TestMain(m *testing.M) {
	ctx := context.Background()
	var err error
	fixture, err = nighttest.New(ctx, "receipts", 200, 21, date.MustParse("2026-11-25"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "receipts tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	fixture.Drop()
	os.Exit(code)
}

// at is when the tests' SMS were sent.
var at = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// smsNotice is a student SMS notice the test marked sent.
type smsNotice struct {
	ID        int64  `db:"notice_id"`
	Student   string `db:"student_id"`
	Recipient string `db:"recipient"`
}

// sent records, for each provider id, an SMS notice to another student
// with a phone, sent at sentAt and accepted by the provider as that id:
// the row delivery leaves (the night's fixture has few SMS of its own).
func sent(t *testing.T, db *sqlx.DB, sentAt time.Time, ids ...string) []smsNotice {
	t.Helper()
	var out []smsNotice
	for _, id := range ids {
		var n smsNotice
		if err := db.Get(&n, `INSERT INTO sisnotify.notices (notice_key, obligation_id, rule, level, student_id, subject_id,
				audience, channel, recipient, language, due_on, night, status, sent_at, provider_id)
			SELECT n.notice_key || '/sms', n.obligation_id, n.rule, n.level, n.student_id, n.subject_id,
				'student', 'sms', s.phone, n.language, n.due_on, n.night, 'sent', $1, $2
			FROM sisnotify.notices n JOIN sisnotify.students s USING (student_id)
			WHERE n.channel = 'email' AND n.audience = 'student' AND s.phone IS NOT NULL
			  AND NOT EXISTS (SELECT 1 FROM sisnotify.notices o WHERE o.student_id = n.student_id AND o.channel = 'sms')
			ORDER BY n.notice_id LIMIT 1
			RETURNING notice_id, student_id, recipient`, sentAt, id); err != nil {
			t.Fatalf("recording an SMS notice sent as %s: %v", id, err)
		}
		out = append(out, n)
	}
	return out
}

func statusOf(t *testing.T, db *sqlx.DB, id int64) string {
	t.Helper()
	var s string
	if err := db.Get(&s, `SELECT status FROM sisnotify.notices WHERE notice_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	return s
}

func eventCount(t *testing.T, db *sqlx.DB) int {
	t.Helper()
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM sisnotify.delivery_events`); err != nil {
		t.Fatal(err)
	}
	return n
}

func newDB(t *testing.T) *sqlx.DB {
	t.Helper()
	return testenv.New(t, fixture.DB.Name).Open(t)
}

// twilioSign signs as Twilio's "Webhooks security" page says, written
// from that description: base64(HMAC-SHA1(token, URL + each parameter,
// sorted by name, as name + value)).
func twilioSign(token, u string, form map[string]string) string {
	names := make([]string, 0, len(form))
	for k := range form {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(u)
	for _, k := range names {
		b.WriteString(k + form[k])
	}
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
