package main

import (
	"strings"
	"testing"
)

// SISNOTIFY_SIS_UPDATED_AT=trusted: the first sync reads the SIS in full,
// the next one only the rows whose updated_at moved, and says so; a bad
// value stops the command before it reads anything.
func TestSyncReadsChangesWhenTrusted(t *testing.T) {
	env, db := nightEnv(t, "300")
	env["SISNOTIFY_SIS_UPDATED_AT"] = "trusted"
	first, _, err := runCmd(t, env, "sync", "--as-of", "2026-11-25")
	if err != nil {
		t.Fatalf("first sync: %v\n%s", err, first)
	}
	if strings.Contains(first, "read only") {
		t.Fatalf("the first sync read changes only:\n%s", first)
	}
	next, _, err := runCmd(t, env, "sync", "--as-of", "2026-11-26")
	if err != nil {
		t.Fatalf("next sync: %v\n%s", err, next)
	}
	if !strings.Contains(next, "read only the students and travel requests whose updated_at is") {
		t.Fatalf("the next sync does not say it read changes only:\n%s", next)
	}
	var full []bool
	if err := db.Select(&full, `SELECT full_read FROM sisnotify.syncs ORDER BY sync_id`); err != nil {
		t.Fatal(err)
	}
	if len(full) != 2 || !full[0] || full[1] {
		t.Fatalf("syncs' full_read = %v, want [true false]", full)
	}

	env["SISNOTIFY_SIS_UPDATED_AT"] = "sometimes"
	if _, _, err := runCmd(t, env, "sync"); exitStatus(err) != 2 || !strings.Contains(err.Error(), "SISNOTIFY_SIS_UPDATED_AT") {
		t.Fatalf("sync with SISNOTIFY_SIS_UPDATED_AT=sometimes: %v, want exit 2 naming the variable", err)
	}
}
