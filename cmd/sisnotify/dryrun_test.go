package main

import (
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// The dry run lists a digest's lines only for the recipients that have not
// had that night's digest: each gets one a night, and a rerun of a night
// that ran sends none again. Without SISNOTIFY_OFFICE_EMAILS it still
// previews, and says on stderr that the office digest is left out.
func TestDryRunListsOnlyDigestsNotSentYet(t *testing.T) {
	testenv.Long(t, "dry runs and a night over 1,500 students")
	env, db := nightEnv(t, "1500")
	const night = "2026-11-25"
	digestLines := func(env map[string]string) (office, dean int, stderr string) {
		t.Helper()
		out, errOut, err := runCmd(t, env, "run", "--once", "--dry-run", "--as-of", night, "--format", "json")
		if err != nil {
			t.Fatalf("dry run: %v\n%s", err, errOut)
		}
		return strings.Count(out, `"audience":"office","channel":"digest"`), strings.Count(out, `"audience":"dean","channel":"digest"`), errOut
	}

	noOffice := map[string]string{}
	for k, v := range env {
		if k != "SISNOTIFY_OFFICE_EMAILS" {
			noOffice[k] = v
		}
	}
	office, dean, errOut := digestLines(noOffice)
	if office != 0 || dean == 0 {
		t.Fatalf("dry run without office emails: %d office and %d dean digest lines, want none and some", office, dean)
	}
	if !strings.Contains(errOut, "SISNOTIFY_OFFICE_EMAILS is not set") {
		t.Errorf("dry run without office emails does not say the office digest is left out; stderr:\n%s", errOut)
	}
	office, dean, errOut = digestLines(env)
	if office == 0 || dean == 0 || strings.Contains(errOut, "SISNOTIFY_OFFICE_EMAILS") {
		t.Fatalf("dry run before the night: %d office and %d dean digest lines (stderr %q), want some of each", office, dean, errOut)
	}

	if out, errOut, err := runCmd(t, env, "run", "--once", "--as-of", night); err != nil {
		t.Fatalf("run --once: %v\n%s\n%s", err, out, errOut)
	}
	if office, dean, _ = digestLines(env); office != 0 || dean != 0 {
		t.Fatalf("dry run of a night whose digests went out lists %d office and %d dean digest lines, want none", office, dean)
	}

	// A digest not sent yet (a crashed run leaves it pending) is listed,
	// with exactly the obligations that digest lists.
	for _, c := range []struct{ audience, key string }{
		{"dean", `(SELECT min(recipient_key) FROM sisnotify.digests WHERE audience = 'dean')`},
		{"office", `'office1'`},
	} {
		var rows int
		if err := db.Get(&rows, `WITH d AS (UPDATE sisnotify.digests SET status = 'pending' WHERE night = $1 AND recipient_key = `+c.key+` RETURNING digest_id)
			SELECT count(*) FROM sisnotify.digest_rows WHERE digest_id = (SELECT digest_id FROM d)`, night); err != nil {
			t.Fatal(err)
		}
		office, dean, _ = digestLines(env)
		got := map[string]int{"office": office, "dean": dean}[c.audience]
		if rows == 0 || got != rows || office+dean != rows {
			t.Errorf("with one %s digest pending (%d obligations): %d office and %d dean digest lines", c.audience, rows, office, dean)
		}
		if _, err := db.Exec(`UPDATE sisnotify.digests SET status = 'sent' WHERE night = $1 AND status = 'pending'`, night); err != nil {
			t.Fatal(err)
		}
	}
}

// The demo ends with a command that lists its notices, and it works as
// printed: it carries the SISNOTIFY_DB_URL the demo used.
func TestDemoPrintsANoticesCommandThatWorks(t *testing.T) {
	env := map[string]string{
		"SISNOTIFY_SIS_URL":         testenv.New(t, "").URL,
		"SISNOTIFY_DB_URL":          testenv.New(t, "").URL,
		"SISNOTIFY_REDIS_URL":       testenv.Redis(t, redisDB),
		"SISNOTIFY_OUTBOX_DIR":      t.TempDir(),
		"SISNOTIFY_SMS_QUIET_HOURS": "",
	}
	out, errOut, err := runCmd(t, env, "demo", "--students", "100", "--seed", "7", "--as-of", "2026-11-25")
	if err != nil {
		t.Fatalf("demo: %v\n%s\n%s", err, out, errOut)
	}
	_, line, ok := strings.Cut(out, "the notice log: ")
	if !ok {
		t.Fatalf("the demo suggests no notices command:\n%s", out)
	}
	line, _, _ = strings.Cut(line, "\n")
	words := shellWords(t, line)
	cmdEnv := map[string]string{}
	for len(words) > 0 && strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(words[0], "=")
		cmdEnv[k] = v
		words = words[1:]
	}
	if len(words) != 2 || words[0] != "sisnotify" || words[1] != "notices" {
		t.Fatalf("suggested command %q: want [VAR=value...] sisnotify notices", line)
	}
	// Only what the command line gives: nothing of the demo's environment.
	got, errOut, err := runCmd(t, cmdEnv, words[1:]...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, errOut)
	}
	if !strings.Contains(got, "sent") {
		t.Fatalf("%s lists no sent notice:\n%s", line, got)
	}
}

// shellWords splits a POSIX shell command line of plain and single-quoted
// words.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	in, started := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			in, started = !in, true
		case !in && (r == ' ' || r == '\t'):
			if started {
				words = append(words, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if in {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if started {
		words = append(words, cur.String())
	}
	return words
}
