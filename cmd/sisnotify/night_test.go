package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// redisDB is this package's Redis database number (see README, Tests).
const redisDB = 3

// localEnv is the environment of a night over the SIS and worker databases
// at sisURL and dbURL, with this package's Redis database, an outbox of the
// test's own and no quiet hours.
func localEnv(t *testing.T, sisURL, dbURL string) map[string]string {
	return map[string]string{
		"SISNOTIFY_SIS_URL":         sisURL,
		"SISNOTIFY_DB_URL":          dbURL,
		"SISNOTIFY_OFFICE_EMAILS":   "office@uni.example",
		"SISNOTIFY_REDIS_URL":       testenv.Redis(t, redisDB),
		"SISNOTIFY_OUTBOX_DIR":      t.TempDir(),
		"SISNOTIFY_SMS_QUIET_HOURS": "",
	}
}

// nightEnv is a demo SIS and an empty worker database.
func nightEnv(t *testing.T, students string) (map[string]string, *sqlx.DB) {
	t.Helper()
	sisDB := testenv.New(t, "")
	db := testenv.New(t, "")
	env := localEnv(t, sisDB.URL, db.URL)
	if _, _, err := runCmd(t, env, "demo", "--sis-only", "--students", students, "--seed", "7", "--as-of", "2026-11-25"); err != nil {
		t.Fatalf("demo --sis-only: %v", err)
	}
	return env, db.Open(t)
}

func TestDryRunIsStableAndMatchesTheNight(t *testing.T) {
	testenv.Long(t, "dry runs and nights over 3,000 students")
	env, db := nightEnv(t, "3000")
	dry := func() string {
		out, _, err := runCmd(t, env, "run", "--once", "--dry-run", "--as-of", "2026-11-25", "--format", "json")
		if err != nil {
			t.Fatalf("dry run: %v", err)
		}
		return out
	}
	first := dry()
	if second := dry(); first != second {
		t.Fatal("two dry runs of the same night differ")
	}
	lines := strings.Split(strings.TrimSpace(first), "\n")
	if len(lines) < 50 {
		t.Fatalf("dry run listed %d lines for 3,000 students; want a realistic night", len(lines))
	}
	// The dry run recorded nothing.
	var recorded int
	if err := db.Get(&recorded, `SELECT (SELECT count(*) FROM sisnotify.notices) + (SELECT count(*) FROM sisnotify.obligations) + (SELECT count(*) FROM sisnotify.students) + (SELECT count(*) FROM sisnotify.syncs)`); err != nil {
		t.Fatal(err)
	}
	if recorded != 0 {
		t.Fatalf("the dry run left %d rows behind", recorded)
	}
	for _, must := range []string{`"audience":"student","channel":"email"`, `"audience":"student","channel":"sms"`,
		`"audience":"office","channel":"email"`, `"audience":"office","channel":"digest"`, `"audience":"dean","channel":"digest"`} {
		if !strings.Contains(first, must) {
			t.Errorf("dry run has no line with %s", must)
		}
	}

	// The real night records exactly the notices the dry run listed.
	out, _, err := runCmd(t, env, "run", "--once", "--as-of", "2026-11-25")
	if err != nil {
		t.Fatalf("run --once: %v\n%s", err, out)
	}
	var sent []string
	if err := db.Select(&sent, `SELECT json_build_object('rule', rule, 'level', level, 'student_id', student_id, 'subject_id', subject_id,
		'audience', audience, 'channel', channel, 'due_on', due_on, 'repeat', repeat)::text FROM sisnotify.notices`); err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, l := range lines {
		if !strings.Contains(l, `"channel":"digest"`) {
			listed = append(listed, l)
		}
	}
	norm := func(s []string) string {
		out := make([]string, len(s))
		for i, x := range s {
			out[i] = strings.NewReplacer(" ", "", `"level":`, `"level":`).Replace(x)
		}
		sort.Strings(out)
		return strings.Join(out, "\n")
	}
	if norm(sent) != norm(listed) {
		t.Fatalf("the night created %d notices, the dry run listed %d", len(sent), len(listed))
	}
	// Every one of them went out: emails as .eml files, SMS as lines.
	emails, smsLines := outboxCounts(t, env["SISNOTIFY_OUTBOX_DIR"])
	var wantEmails, wantSMS, notSent int
	if err := db.QueryRow(`SELECT count(*) FILTER (WHERE channel = 'email'), count(*) FILTER (WHERE channel = 'sms'), count(*) FILTER (WHERE status <> 'sent') FROM sisnotify.notices`).Scan(&wantEmails, &wantSMS, &notSent); err != nil {
		t.Fatal(err)
	}
	if emails != wantEmails || smsLines != wantSMS || notSent != 0 {
		t.Fatalf("outbox has %d emails and %d SMS for %d and %d notices (%d not sent)", emails, smsLines, wantEmails, wantSMS, notSent)
	}

	// Rerunning the night creates and sends nothing new.
	if _, _, err := runCmd(t, env, "run", "--once", "--as-of", "2026-11-25"); err != nil {
		t.Fatal(err)
	}
	var total int
	if err := db.Get(&total, `SELECT count(*) FROM sisnotify.notices`); err != nil || total != len(sent) {
		t.Fatalf("after a rerun: %d notices (%v), want %d", total, err, len(sent))
	}
	if e2, s2 := outboxCounts(t, env["SISNOTIFY_OUTBOX_DIR"]); e2 != emails || s2 != smsLines {
		t.Fatalf("the rerun sent again: %d emails, %d SMS", e2-emails, s2-smsLines)
	}

	// The next day sends only the steps reached that day, as its dry run said.
	out, _, err = runCmd(t, env, "run", "--once", "--dry-run", "--as-of", "2026-11-26", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var nextListed []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" && !strings.Contains(l, `"channel":"digest"`) {
			nextListed = append(nextListed, l)
		}
	}
	if _, _, err := runCmd(t, env, "run", "--once", "--as-of", "2026-11-26"); err != nil {
		t.Fatal(err)
	}
	var nextSent []string
	if err := db.Select(&nextSent, `SELECT json_build_object('rule', rule, 'level', level, 'student_id', student_id, 'subject_id', subject_id,
		'audience', audience, 'channel', channel, 'due_on', due_on, 'repeat', repeat)::text FROM sisnotify.notices WHERE night = '2026-11-26'`); err != nil {
		t.Fatal(err)
	}
	if len(nextSent) == 0 || norm(nextSent) != norm(nextListed) {
		t.Fatalf("the next night created %d notices, its dry run listed %d", len(nextSent), len(nextListed))
	}
	if e3, s3 := outboxCounts(t, env["SISNOTIFY_OUTBOX_DIR"]); e3+s3 != emails+smsLines+len(nextSent) {
		t.Fatalf("the next night sent %d, want its %d new notices", e3+s3-emails-smsLines, len(nextSent))
	}
}

// outboxCounts counts the notice emails (.eml files named after a notice's
// Message-ID; digests are named digest.*) and SMS lines of an outbox folder.
func outboxCounts(t *testing.T, dir string) (emails, sms int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "notice.*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "sms.jsonl"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(files), strings.Count(string(raw), "\n")
}

func TestDryRunTableForStaff(t *testing.T) {
	env, _ := nightEnv(t, "500")
	out, _, err := runCmd(t, env, "run", "--once", "--dry-run", "--as-of", "2026-11-25")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Dry run for 2026-11-25", "STUDENT", "WHO GETS WHAT", "student: email"} {
		if !strings.Contains(out, want) {
			t.Errorf("table output lacks %q:\n%s", want, out)
		}
	}
}

func TestDemoRefusesARealSIS(t *testing.T) {
	sisDB := testenv.New(t, "")
	db := sisDB.Open(t)
	if _, err := db.Exec(`CREATE SCHEMA sis; CREATE TABLE sis.students (student_id text)`); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCmd(t, map[string]string{"SISNOTIFY_SIS_URL": sisDB.URL}, "demo", "--sis-only", "--students", "10")
	if err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("demo over a real sis schema: %v, want a refusal", err)
	}
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'sis'`); err != nil || n != 1 {
		t.Fatalf("the real schema was touched: %d tables, %v", n, err)
	}
}
