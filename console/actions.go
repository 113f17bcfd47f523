package console

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
)

// The bounds of an action's input.
const (
	maxReason    = 500 // characters of a reason
	maxSnoozeDay = 90  // a snooze ends at most this many days after today
)

// actionRoutes registers the office's actions. Each is a POST of a form
// (csrf, reason, and for a snooze until), office only, audited; it
// answers 303 to the page it came from with ?done=<action>, or a page that
// says what was wrong (400, 404, 409) and changes nothing.
func (h *Handler) actionRoutes() {
	h.mux.Handle("POST /console/obligations/{id}/close", h.officeOnly(h.closeObligation))
	h.mux.Handle("POST /console/obligations/{id}/snooze", h.officeOnly(h.snoozeObligation))
	h.mux.Handle("POST /console/notices/{id}/retry", h.officeOnly(h.retryNotice))
	h.mux.Handle("POST /console/nights/{night}/release", h.officeOnly(h.releaseNight))
	h.reportRoutes()
}

// closeObligation closes an obligation handled outside the SIS.
func (h *Handler) closeObligation(w http.ResponseWriter, r *http.Request) {
	v, id, ok := h.actionTarget(w, r, "action.err.obligation")
	if !ok {
		return
	}
	reason, key := formReason(r, true)
	if key != "" {
		h.actionError(w, r, http.StatusBadRequest, key)
		return
	}
	res, err := h.store.ObligationCloseByOffice(r.Context(), h.today(), store.OfficeActionAudit{
		Actor: v.Email, Role: string(v.Role), ObligationID: id, Reason: reason,
	})
	if errors.Is(err, store.ErrNoObligation) {
		h.actionError(w, r, http.StatusNotFound, "action.err.obligation")
		return
	}
	if err != nil {
		h.actionFailed(w, r, "close", err)
		return
	}
	done := "close"
	if res.AlreadyClosed {
		done = "close-already"
	} else {
		h.log.InfoContext(r.Context(), "console: obligation closed", "obligation_id", id, "student_id", res.StudentID, "notices_cancelled", res.Cancelled)
	}
	h.actionDone(w, r, studentPath(res.StudentID), done)
}

// snoozeObligation holds an obligation's student notices until a date.
func (h *Handler) snoozeObligation(w http.ResponseWriter, r *http.Request) {
	v, id, ok := h.actionTarget(w, r, "action.err.obligation")
	if !ok {
		return
	}
	today := h.today()
	until, err := date.Parse(strings.TrimSpace(r.PostFormValue("until")))
	switch {
	case err != nil:
		h.actionError(w, r, http.StatusBadRequest, "action.err.until")
		return
	case until <= today:
		h.actionError(w, r, http.StatusBadRequest, "action.err.until.past")
		return
	case until.Sub(today) > maxSnoozeDay:
		h.actionError(w, r, http.StatusBadRequest, "action.err.until.far")
		return
	}
	reason, key := formReason(r, true)
	if key != "" {
		h.actionError(w, r, http.StatusBadRequest, key)
		return
	}
	// The notices wait until the start of that day where the university is.
	held := until.Time(h.opt.Location)
	res, err := h.store.ObligationSnoozeByOffice(r.Context(), until, held, store.OfficeActionAudit{
		Actor: v.Email, Role: string(v.Role), ObligationID: id, Reason: reason,
	})
	if errors.Is(err, store.ErrNoObligation) {
		h.actionError(w, r, http.StatusNotFound, "action.err.obligation")
		return
	}
	if err != nil {
		h.actionFailed(w, r, "snooze", err)
		return
	}
	if res.AlreadyClosed {
		h.actionError(w, r, http.StatusConflict, "action.err.closed")
		return
	}
	h.log.InfoContext(r.Context(), "console: obligation snoozed", "obligation_id", id, "student_id", res.StudentID, "until", until.String(), "notices_held", res.Held)
	h.actionDone(w, r, studentPath(res.StudentID), "snooze")
}

// retryNotice puts a failed notice back on the queue, after its contact
// was fixed.
func (h *Handler) retryNotice(w http.ResponseWriter, r *http.Request) {
	v, id, ok := h.actionTarget(w, r, "action.err.notice")
	if !ok {
		return
	}
	reason, key := formReason(r, false)
	if key != "" {
		h.actionError(w, r, http.StatusBadRequest, key)
		return
	}
	if h.opt.Requeuer == nil {
		h.actionError(w, r, http.StatusServiceUnavailable, "action.err.requeuer")
		return
	}
	n, found, err := h.store.NoticeForOffice(r.Context(), id)
	if err != nil {
		h.actionFailed(w, r, "retry", err)
		return
	}
	if !found {
		h.actionError(w, r, http.StatusNotFound, "action.err.notice")
		return
	}
	if n.Status != store.NoticeFailed {
		h.actionError(w, r, http.StatusConflict, "action.err.notfailed")
		return
	}
	done, err := h.opt.Requeuer.Requeue(r.Context(), []int64{id}, v.Email)
	if err != nil {
		h.actionFailed(w, r, "retry", err)
		return
	}
	if len(done) == 0 {
		// Another hand re-queued it meanwhile.
		h.actionError(w, r, http.StatusConflict, "action.err.notfailed")
		return
	}
	if err := h.store.AuditRecordAction(r.Context(), store.OfficeActionAudit{
		Actor: v.Email, Role: string(v.Role), Action: store.AuditRetry, StudentID: n.StudentID, NoticeID: id, Reason: reason,
	}); err != nil {
		h.actionFailed(w, r, "retry", err)
		return
	}
	h.log.InfoContext(r.Context(), "console: notice re-queued", "notice_id", id, "student_id", n.StudentID)
	h.actionDone(w, r, studentPath(n.StudentID), "retry")
}

// releaseNight releases a night the feed guard held, as `run --once
// --force` does.
func (h *Handler) releaseNight(w http.ResponseWriter, r *http.Request) {
	v := h.actor(w, r)
	if v == nil {
		return
	}
	night, err := date.Parse(r.PathValue("night"))
	if err != nil {
		h.actionError(w, r, http.StatusBadRequest, "action.err.night")
		return
	}
	reason, key := formReason(r, true)
	if key != "" {
		h.actionError(w, r, http.StatusBadRequest, key)
		return
	}
	if h.opt.Releaser == nil {
		h.actionError(w, r, http.StatusServiceUnavailable, "action.err.releaser")
		return
	}
	if err := h.opt.Releaser.Release(r.Context(), night, v.Email); errors.Is(err, ErrNotHeld) {
		h.actionError(w, r, http.StatusConflict, "action.err.notheld")
		return
	} else if err != nil {
		h.actionFailed(w, r, "release", err)
		return
	}
	if err := h.store.AuditRecordAction(r.Context(), store.OfficeActionAudit{
		Actor: v.Email, Role: string(v.Role), Action: store.AuditRelease, Night: night, Reason: reason,
	}); err != nil {
		h.actionFailed(w, r, "release", err)
		return
	}
	h.log.InfoContext(r.Context(), "console: night released", "night", night.String())
	h.actionDone(w, r, "/console/nights", "release")
}

// actor is the office viewer of an action's request. officeOnly lets no
// one else through; this says so again where the change is made, so that
// an action mounted without it still refuses a dean (403, nil).
func (h *Handler) actor(w http.ResponseWriter, r *http.Request) *Viewer {
	v := viewerOf(r)
	if !v.CanAct() {
		http.Error(w, "only the International Office may do this", http.StatusForbidden)
		return nil
	}
	return v
}

// actionTarget is the office viewer of an action and the id in its path;
// false when the answer was given (403 for anyone but the office, 404 with
// notFound's words for an id that cannot be one).
func (h *Handler) actionTarget(w http.ResponseWriter, r *http.Request, notFound string) (*Viewer, int64, bool) {
	v := h.actor(w, r)
	if v == nil {
		return nil, 0, false
	}
	id, ok := pathID(r)
	if !ok {
		h.actionError(w, r, http.StatusNotFound, notFound)
		return nil, 0, false
	}
	return v, id, true
}

// pathID is the {id} of the request's path, a positive integer.
func pathID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id, err == nil && id > 0
}

// formReason is the form's reason, trimmed, and the key of what is wrong
// with it ("" when nothing): missing when required, or too long.
func formReason(r *http.Request, required bool) (string, string) {
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	switch {
	case !utf8.ValidString(reason):
		return "", "action.err.reason.long"
	case required && reason == "":
		return "", "action.err.reason"
	case utf8.RuneCountInString(reason) > maxReason:
		return "", "action.err.reason.long"
	}
	return reason, ""
}

// studentPath is the page of a student.
func studentPath(studentID string) string {
	return "/console/students/" + url.PathEscape(studentID)
}

// actionDone answers a done action: back to the page, which confirms it.
func (h *Handler) actionDone(w http.ResponseWriter, r *http.Request, path, done string) {
	http.Redirect(w, r, path+"?done="+url.QueryEscape(done), http.StatusSeeOther)
}

// actionFailed answers an action that failed on our side; the log says
// why, the page says to try again.
func (h *Handler) actionFailed(w http.ResponseWriter, r *http.Request, action string, err error) {
	h.log.ErrorContext(r.Context(), "console: action failed", "action", action, "err", err)
	h.actionError(w, r, http.StatusInternalServerError, "action.err.internal")
}
