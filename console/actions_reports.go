package console

import (
	"errors"
	"net/http"

	"github.com/iec-almaty/sisnotify/store"
)

// The office's decisions on a student's report (from the student page):
// confirm closes the obligation it is about (reason office); reject
// resumes what it paused at the next evaluation. Each asks for a reason
// and is audited (report-confirm, report-reject).
func (h *Handler) reportRoutes() {
	h.mux.Handle("POST /console/reports/{id}/confirm", h.officeOnly(h.confirmReport))
	h.mux.Handle("POST /console/reports/{id}/reject", h.officeOnly(h.rejectReport))
}

func (h *Handler) confirmReport(w http.ResponseWriter, r *http.Request) {
	h.decideReport(w, r, true)
}

func (h *Handler) rejectReport(w http.ResponseWriter, r *http.Request) {
	h.decideReport(w, r, false)
}

func (h *Handler) decideReport(w http.ResponseWriter, r *http.Request, confirm bool) {
	v := h.actor(w, r)
	if v == nil {
		return
	}
	id, ok := pathID(r)
	if !ok {
		h.actionError(w, r, http.StatusNotFound, "action.err.report")
		return
	}
	reason, key := formReason(r, true)
	if key != "" {
		h.actionError(w, r, http.StatusBadRequest, key)
		return
	}
	a := store.OfficeActionAudit{Actor: v.Email, Role: string(v.Role), Reason: reason}
	action, decide := "report-reject", h.store.ReportsReject
	if confirm {
		action, decide = "report-confirm", h.store.ReportsConfirm
	}
	res, err := decide(r.Context(), h.today(), a, id)
	if errors.Is(err, store.ErrNoReport) {
		h.actionError(w, r, http.StatusNotFound, "action.err.report")
		return
	}
	if err != nil {
		h.actionFailed(w, r, action, err)
		return
	}
	if !res.Done {
		h.actionError(w, r, http.StatusConflict, "action.err.reportdecided")
		return
	}
	h.log.InfoContext(r.Context(), "console: report decided", "report_id", id, "student_id", res.StudentID, "state", res.State,
		"obligation_id", res.ObligationID, "notices_cancelled", res.Cancelled)
	h.actionDone(w, r, studentPath(res.StudentID), action)
}

// The words of the reports' actions and of the student page's section.
func init() {
	for i, lang := range []string{"en", "ru", "kk"} {
		m := make(map[string]string, len(reportWords))
		for k, v := range reportWords {
			m[k] = v[i]
		}
		addMessages(lang, m)
	}
}

var reportWords = map[string][3]string{
	"action.err.report":           {"There is no such report.", "Такого сообщения нет.", "Мұндай хабар жоқ."},
	"action.err.reportdecided":    {"This report was decided already: there is nothing to do.", "По этому сообщению уже принято решение: делать нечего.", "Бұл хабар бойынша шешім қабылданып қойған: істейтін ештеңе жоқ."},
	"page.done.report-confirm":    {"The report was confirmed; what it is about is closed.", "Сообщение подтверждено; обязательство закрыто.", "Хабар расталды; міндеттеме жабылды."},
	"page.done.report-reject":     {"The report was rejected; reminders resume.", "Сообщение отклонено; напоминания возобновятся.", "Хабар қабылданбады; ескертулер қайта басталады."},
	"page.student.reports":        {"Reports from the student", "Сообщения студента", "Студенттің хабарлары"},
	"page.report.done":            {"says it is done", "сообщает, что выполнено", "орындалғанын хабарлайды"},
	"page.report.lost-documents":  {"lost documents", "утеря документов", "құжаттар жоғалды"},
	"page.report.address-changed": {"changed address", "смена адреса", "мекенжай өзгерді"},
	"page.report.status-changed":  {"new residence status", "новый статус", "жаңа мәртебе"},
	"page.report.reported":        {"reported on", "дата сообщения", "хабарланған күн"},
	"page.report.moved":           {"moved on", "дата переезда", "көшкен күні"},
	"page.report.confirm":         {"Confirm", "Подтвердить", "Растау"},
	"page.report.reject":          {"Reject", "Отклонить", "Қабылдамау"},
}
