package console

import (
	"net/http"
	"slices"
	"strings"

	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
)

// studentAuditRows bounds the audit rows of a student's page.
const studentAuditRows = 200

// studentPage is a student's page data.
type studentPage struct {
	*page
	Today       date.Date
	Student     *store.ConsolePageStudent
	Name        string
	Passport    string // masked
	Obligations []studentObligation
	Notices     []studentNotice
	Problems    []store.ConsolePageProblem
	Audit       []store.ConsolePageAuditRow
	Reports     []store.ReportRow // open, newest first
	// Unreachable are the student's contacts that cannot receive (a
	// bounce, an undelivered SMS) while the SIS still holds them, email
	// first. The office sees the contact and the last error; a dean, who
	// sees no contacts, the channel and the day only.
	Unreachable []store.UnreachableContact
	// EmailUnreachable, PhoneUnreachable: the snapshot's address, number
	// is one of them (marked beside it).
	EmailUnreachable, PhoneUnreachable bool
	CanRetry                           bool // the office, and the console can re-queue notices
}

// studentObligation is an obligation with its steps.
type studentObligation struct {
	store.ConsolePageObligation
	Open    bool
	Snoozed bool
	Late    bool
	Steps   []store.ConsolePageStep
}

// studentNotice is a notice with its delivery attempts.
type studentNotice struct {
	store.ConsolePageNotice
	Attempts []store.ConsolePageAttempt
	Failed   bool
}

// studentPage serves a student's page: the snapshot's fields, the
// contacts that cannot receive, every obligation with its steps, every
// notice with its attempts, the data problems and the audit log. A
// student outside a dean's faculties is "not found", as an unknown id is:
// a dean learns nothing of others.
func (h *Handler) studentPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := viewerOf(r)
	id := r.PathValue("id")
	st, err := h.store.ConsolePageStudentByID(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if st == nil || !canSee(v, st.FacultyID) {
		h.notFound(w, r)
		return
	}
	p := &studentPage{page: h.newPage(r, "", "page.student.title"), Today: h.today(), Student: st}
	p.Name = strings.TrimSpace(st.GivenName + " " + st.FamilyName)
	p.Title = p.Name + " · " + st.ID
	p.Passport = maskPassport(st.Passport)
	p.CanRetry = v.CanAct() && h.opt.Requeuer != nil
	obligations, err := h.store.ConsolePageStudentObligations(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	steps, err := h.store.ConsolePageStudentSteps(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for _, o := range obligations {
		so := studentObligation{
			ConsolePageObligation: o, Open: o.ClosedOn == 0 && o.CloseReason == "",
			Snoozed: o.SnoozedUntil > p.Today, Late: o.FoundLate&lateMask != 0,
		}
		for _, s := range steps {
			if s.ObligationID == o.ID {
				so.Steps = append(so.Steps, s)
			}
		}
		p.Obligations = append(p.Obligations, so)
	}
	notices, err := h.store.ConsolePageStudentNotices(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	attempts, err := h.store.ConsolePageStudentAttempts(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for _, n := range notices {
		sn := studentNotice{ConsolePageNotice: n, Failed: n.Status == string(store.NoticeFailed)}
		for _, a := range attempts {
			if a.NoticeID == n.ID {
				sn.Attempts = append(sn.Attempts, a)
			}
		}
		p.Notices = append(p.Notices, sn)
	}
	if p.Problems, err = h.store.ConsolePageStudentProblems(ctx, id); err != nil {
		h.fail(w, r, err)
		return
	}
	if p.Audit, err = h.store.ConsolePageStudentAudit(ctx, id, studentAuditRows); err != nil {
		h.fail(w, r, err)
		return
	}
	if p.Reports, err = h.store.ReportsOpenOfStudent(ctx, id); err != nil {
		h.fail(w, r, err)
		return
	}
	if p.Unreachable, err = h.store.UnreachableContacts(ctx, id); err != nil {
		h.fail(w, r, err)
		return
	}
	for _, u := range p.Unreachable {
		p.EmailUnreachable = p.EmailUnreachable || u.Channel == "email"
		p.PhoneUnreachable = p.PhoneUnreachable || u.Channel == "sms"
	}
	h.render(w, r, http.StatusOK, "student", p)
}

// canSee says whether v may see a student of faculty: the office every
// one, a dean those of their faculties.
func canSee(v *Viewer, faculty string) bool {
	if v == nil {
		return false
	}
	if v.Role == RoleOffice {
		return true
	}
	return faculty != "" && slices.Contains(v.FacultyIDs, faculty)
}

// maskPassport shows a passport number's last 3 characters only.
func maskPassport(s string) string {
	r := []rune(strings.TrimSpace(s))
	if len(r) == 0 {
		return "—"
	}
	if len(r) <= 3 {
		return "•••"
	}
	return "•••••" + string(r[len(r)-3:])
}
