package jobs_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/store"
)

// reason is the snapshot's reason of travel request id (NULL: "<null>").
func (e *env) reason(t *testing.T, id string) string {
	t.Helper()
	var r sql.NullString
	if err := e.db.Get(&r, `SELECT reason FROM sisnotify.travel_requests WHERE request_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if !r.Valid {
		return "<null>"
	}
	return r.String
}

// The trip's stated reason is synced like any other field: a change of it
// alone is a changed row, and NULL, a value, a cleaned value and NULL
// again each reach the snapshot.
func TestSyncReasonChanges(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture)
	e.sync(t)
	if got := e.reason(t, "T1"); got != "<null>" {
		t.Fatalf("reason after the first sync = %q, want NULL", got)
	}
	for _, c := range []struct {
		set  string // SQL value
		want string
	}{
		{`'conference'`, "conference"},
		{`'family event'`, "family event"},
		{`E'family\nevent'`, "family event"}, // a line break is cleaned, as in names
		{`'   '`, "<null>"},                  // blank is no reason
		{`'sports competition'`, "sports competition"},
		{`NULL`, "<null>"},
	} {
		e.exec(t, `UPDATE sis.travel_requests SET reason = `+c.set+` WHERE request_id = 'T1'`)
		res := e.sync(t)
		if tr := res.Tables[store.EntityTravel]; tr.Changed != 1 || tr.New != 0 {
			t.Errorf("reason %s: travel %+v, want exactly 1 changed", c.set, tr)
		}
		if n := res.Changed(); n != 1 {
			t.Errorf("reason %s: %d rows changed, want 1", c.set, n)
		}
		if got := e.reason(t, "T1"); got != c.want {
			t.Errorf("reason %s: snapshot has %q, want %q", c.set, got, c.want)
		}
	}
	ps := e.problems(t)
	if _, ok := ps["travel_request/T1/reason/control_characters"]; ok {
		t.Errorf("a cleaned reason's warning outlived the fix: %v", ps)
	}
	// Unchanged, it is not rewritten.
	if n := e.sync(t).Changed(); n != 0 {
		t.Errorf("unchanged SIS: %d rows changed", n)
	}
}

// A reason with a line break is kept cleaned, with a warning that names
// the row and field and never the text.
func TestSyncReasonControlCharacters(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture+`; UPDATE sis.travel_requests SET reason = E'visa\rinterview' WHERE request_id = 'T1'`)
	e.sync(t)
	if got := e.reason(t, "T1"); got != "visa interview" {
		t.Errorf("reason %q, want %q", got, "visa interview")
	}
	p, ok := e.problems(t)["travel_request/T1/reason/control_characters"]
	if !ok || p.Severity != "warning" || strings.Contains(p.Message, "interview") {
		t.Errorf("problem %+v (found %v), want a warning that does not quote the reason", p, ok)
	}
}

// The reason is part of the SIS contract: an SIS (or view) without the
// column fails the sync with an error naming the table and the column, and
// the previous snapshot stays; a view that supplies NULL for it works.
func TestSyncWithoutReasonColumn(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture)
	e.sync(t)
	e.exec(t, `ALTER TABLE sis.travel_requests DROP COLUMN reason`)
	e.exec(t, `UPDATE sis.travel_requests SET return_on = '2026-12-06'`)
	s := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: e.db}
	_, err := s.Run(context.Background(), asOf)
	if err == nil || !strings.Contains(err.Error(), "sis.travel_requests") || !strings.Contains(err.Error(), `"reason"`) {
		t.Fatalf("sync of an SIS without the reason column: %v, want an error naming the table and the column", err)
	}
	var ret string
	if err := e.db.Get(&ret, `SELECT return_on::text FROM sisnotify.travel_requests WHERE request_id = 'T1'`); err != nil || ret != "2026-12-05" {
		t.Fatalf("return_on %s (%v): the failed sync changed the snapshot", ret, err)
	}
	// The university's fix: a view that supplies the column.
	e.exec(t, `ALTER TABLE sis.travel_requests RENAME TO travel_requests_base;
		CREATE VIEW sis.travel_requests AS SELECT *, NULL::text AS reason FROM sis.travel_requests_base`)
	res := e.sync(t)
	if tr := res.Tables[store.EntityTravel]; tr.Changed != 1 {
		t.Fatalf("after the view: travel %+v, want 1 changed", tr)
	}
	if got := e.reason(t, "T1"); got != "<null>" {
		t.Errorf("reason through the view = %q, want NULL", got)
	}
}
