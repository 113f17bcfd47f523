package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/internal/nighttest"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
)

// The check of every travel request for its student (a first load's, and
// the weekly one) merges the two key-ordered indexes, without a sort, a
// hash join or a nested loop, and leaves the planner's settings as they
// were for the rest of the sync's transaction.
func TestEveryTravelRequestCheckMerges(t *testing.T) {
	ctx := context.Background()
	f, err := nighttest.New(ctx, "store_merge", 60, 3, date.MustParse("2026-11-25"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Drop)
	db := testenv.New(t, f.DB.Name).Open(t)
	plan, after, err := store.EveryTravelRequestPlan(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "Merge Anti Join") || strings.Contains(text, "Sort") ||
		strings.Contains(text, "Hash") || strings.Contains(text, "Nested Loop") {
		t.Errorf("the check's plan is not a merge of the two indexes:\n%s", text)
	}
	for _, index := range []string{"travel_requests_student", "students_pkey"} {
		if !strings.Contains(text, index) {
			t.Errorf("the check's plan does not read %s:\n%s", index, text)
		}
	}
	if after != "on on on" {
		t.Errorf("enable_nestloop, enable_hashjoin and enable_sort after the check: %q, want them back on", after)
	}
}
