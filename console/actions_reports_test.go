package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestReportsConfirmReject: the student page lists a student's open
// reports with the office's two forms; confirm closes the obligation the
// report is about (reason office), reject leaves it open; both need a
// reason, are audited, and a decided report cannot be decided again.
func TestReportsConfirmReject(t *testing.T) {
	r := newActionRig(t)
	id, student := r.openWithPending()
	var done, lost int64
	r.scalar(&done, `INSERT INTO sisnotify.student_reports (student_id, kind, obligation_id, reported_on, dedup_key)
		VALUES ($1, 'done', $2, '2026-11-25', 'k1') RETURNING report_id`, student, id)
	r.scalar(&lost, `INSERT INTO sisnotify.student_reports (student_id, kind, reported_on, dedup_key)
		VALUES ($1, 'lost-documents', '2026-11-25', 'k2') RETURNING report_id`, student)

	req, _ := http.NewRequest(http.MethodGet, "/console/students/"+url.PathEscape(student), nil)
	req.SetBasicAuth("office", "pw")
	res, body := do(t, r.h, req)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("student page: %d", res.StatusCode)
	}
	for _, want := range []string{"/console/reports/" + actionItoa(done) + "/confirm", "/console/reports/" + actionItoa(lost) + "/reject", "R" + actionItoa(lost)} {
		if !strings.Contains(body, want) {
			t.Errorf("student page has no %q", want)
		}
	}

	// A reason is required.
	if w := r.post("/console/reports/"+actionItoa(done)+"/confirm", nil); w.Code != http.StatusBadRequest {
		t.Errorf("confirm without a reason: %d, want 400", w.Code)
	}
	if w := r.post("/console/reports/999999/confirm", url.Values{"reason": {"x"}}); w.Code != http.StatusNotFound {
		t.Errorf("unknown report: %d, want 404", w.Code)
	}
	wantActionRedirect(t, r.post("/console/reports/"+actionItoa(done)+"/confirm", url.Values{"reason": {"paper seen"}}),
		"/console/students/"+student+"?done=report-confirm")
	var reason, state, by string
	r.scalar(&reason, `SELECT close_reason FROM sisnotify.obligations WHERE obligation_id = $1`, id)
	r.scalar(&state, `SELECT state || ':' || decided_by || ':' || decision_reason FROM sisnotify.student_reports WHERE report_id = $1`, done)
	if reason != "office" || state != "confirmed:"+actionActor+":paper seen" {
		t.Errorf("after confirm: obligation %q, report %q", reason, state)
	}
	var pending int
	r.scalar(&pending, `SELECT count(*) FROM sisnotify.notices WHERE obligation_id = $1 AND status = 'pending'`, id)
	if pending != 0 {
		t.Errorf("%d notices still pending after confirm", pending)
	}
	// Decided: a second decision is refused and changes nothing.
	if w := r.post("/console/reports/"+actionItoa(done)+"/reject", url.Values{"reason": {"oops"}}); w.Code != http.StatusConflict {
		t.Errorf("reject of a confirmed report: %d, want 409", w.Code)
	}

	wantActionRedirect(t, r.post("/console/reports/"+actionItoa(lost)+"/reject", url.Values{"reason": {"documents found"}}),
		"/console/students/"+student+"?done=report-reject")
	r.scalar(&by, `SELECT state || ':' || decided_by FROM sisnotify.student_reports WHERE report_id = $1`, lost)
	if by != "rejected:"+actionActor {
		t.Errorf("after reject: %q", by)
	}
	if c, j := r.auditRows("report-confirm"), r.auditRows("report-reject"); c != 1 || j != 1 {
		t.Errorf("audit rows: %d confirm, %d reject; want 1 and 1", c, j)
	}
	var detail string
	r.scalar(&detail, `SELECT detail->>'kind' || ' ' || coalesce(reason, '') FROM sisnotify.audit_log WHERE action = 'report-reject'`)
	if detail != "lost-documents documents found" {
		t.Errorf("reject audit detail %q", detail)
	}
	// Decided reports leave the student page.
	res, body = do(t, r.h, req)
	if res.StatusCode != http.StatusOK || strings.Contains(body, "/console/reports/") {
		t.Errorf("student page after the decisions still offers them (%d)", res.StatusCode)
	}
}
