package store

import (
	"encoding/json"
	"time"

	"github.com/iec-almaty/sisnotify/jobs/validate"
	"github.com/iec-almaty/sisnotify/store/internal/pgcopy"
)

// Encoded is one validated row ready for TableWriter.Write: its COPY row
// and, for a direct load, the COPY rows of its problems. Reuse it: its
// buffers are kept.
type Encoded struct {
	Line     pgcopy.Line
	Problems []byte // data_problems rows, one after another (direct load)
	problem  pgcopy.Line
}

// Encoder encodes validated rows for one TableWriter. It is a small value,
// safe to copy and to use from several goroutines at once.
type Encoder struct {
	entity Entity
	direct bool
	syncID int64
	// now is the transaction's now(), for the direct load's "changed at"
	// columns.
	now time.Time
	// faculties present after the sync, for a direct load of students
	// (read only).
	faculties map[string]bool
}

// Encoder returns the encoder of the table's rows.
func (tw *TableWriter) Encoder() Encoder {
	e := Encoder{entity: tw.t.entity, direct: tw.direct, syncID: tw.w.syncID, now: tw.w.now}
	if tw.direct && tw.t.entity == EntityStudent && tw.w.directStudents {
		e.faculties = tw.w.faculties
	}
	return e
}

// unknownFacultyMessage is the message of an unknown_faculty problem,
// found by a scan (SyncWriter.crossChecks) or on a direct load.
const unknownFacultyMessage = "faculty_id names no faculty of the SIS: no dean to escalate to"

// Student encodes a new or changed student.
func (e Encoder) Student(out *Encoded, s *validate.Student, hash uint64, problems []validate.Problem) error {
	l := &out.Line
	l.Reset()
	l.Str(s.ID)
	l.Str(s.GivenName)
	l.Str(s.FamilyName)
	for _, v := range []string{s.Email, s.Phone, s.Language, s.Citizenship, s.Regime, s.FacultyID, s.Status, s.PassportNumber} {
		l.Nullable(v)
	}
	l.Date(s.PassportExpiresOn)
	l.Date(s.PlannedEntryOn)
	l.Date(s.InvitationDocsOn)
	l.Date(s.EnteredOn)
	l.Date(s.OfficeCheckInOn)
	l.Date(s.RegisteredOn)
	l.Date(s.RegistrationExpiresOn)
	l.Date(s.ExtensionRequestedOn)
	l.Date(s.MovedOn)
	l.Date(s.AddressRegisteredOn)
	l.Timestamp(s.UpdatedAt)
	if !e.direct {
		return e.stage(out, hash, problems)
	}
	l.Int64(int64(hash))
	l.Int64(e.syncID)
	// When each deadline-relevant fact changed: now, for the facts the
	// row has (the merge's CASE WHEN … IS NOT NULL THEN now()).
	e.since(l, s.PassportExpiresOn != 0)
	e.since(l, s.EnteredOn != 0)
	e.since(l, s.RegisteredOn != 0 || s.RegistrationExpiresOn != 0)
	e.since(l, s.MovedOn != 0)
	e.problems(out, s.ID, problems)
	if e.faculties != nil && s.FacultyID != "" && !e.faculties[s.FacultyID] {
		// What the scan of crossChecks would find: every student is new.
		e.appendProblem(out, s.ID, validate.Problem{Field: "faculty_id", Code: validate.CodeUnknownFaculty, Severity: validate.Warning, Message: unknownFacultyMessage})
	}
	return nil
}

// since appends now when the row has the fact, else NULL: the
// transaction's start, the very value of the merge's now().
func (e Encoder) since(l *pgcopy.Line, has bool) {
	if !has {
		l.Null()
		return
	}
	l.Timestamp(e.now)
}

// Travel encodes a new or changed travel request.
func (e Encoder) Travel(out *Encoded, t *validate.Travel, hash uint64, problems []validate.Problem) error {
	l := &out.Line
	l.Reset()
	l.Str(t.ID)
	l.Str(t.StudentID)
	l.Nullable(t.Kind)
	l.Date(t.SubmittedOn)
	l.Date(t.DepartureOn)
	l.Date(t.ReturnOn)
	l.Nullable(t.DeanDecision)
	l.Nullable(t.Reason)
	l.Bool(t.ExitVisaReady, t.ExitVisaKnown)
	l.Date(t.DepartedOn)
	l.Date(t.ReturnedOn)
	l.Date(t.ReturnCheckInOn)
	l.Bool(t.Cancelled, true)
	l.Timestamp(t.UpdatedAt)
	if !e.direct {
		return e.stage(out, hash, problems)
	}
	l.Int64(int64(hash))
	l.Int64(e.syncID)
	e.problems(out, t.ID, problems)
	return nil
}

// Faculty encodes a new or changed faculty.
func (e Encoder) Faculty(out *Encoded, f *validate.Faculty, hash uint64, problems []validate.Problem) error {
	l := &out.Line
	l.Reset()
	l.Str(f.ID)
	l.Str(f.Name)
	l.Str(f.DeanName)
	l.Nullable(f.DeanEmail)
	l.Nullable(f.DeanLanguage)
	return e.finish(out, f.ID, hash, problems)
}

// Period encodes a new or changed academic period.
func (e Encoder) Period(out *Encoded, p *validate.Period, hash uint64, problems []validate.Problem) error {
	l := &out.Line
	l.Reset()
	l.Str(p.ID)
	l.Nullable(p.Kind)
	l.Date(p.StartsOn)
	l.Date(p.EndsOn)
	return e.finish(out, p.ID, hash, problems)
}

// finish ends the line of a table without a sync id (faculties, periods).
func (e Encoder) finish(out *Encoded, id string, hash uint64, problems []validate.Problem) error {
	if !e.direct {
		return e.stage(out, hash, problems)
	}
	out.Line.Int64(int64(hash))
	e.problems(out, id, problems)
	return nil
}

// stage ends a staging line: the hash and the problems as JSON, which the
// merge unpacks into data_problems.
func (e Encoder) stage(out *Encoded, hash uint64, problems []validate.Problem) error {
	out.Problems = out.Problems[:0]
	l := &out.Line
	l.Int64(int64(hash))
	if len(problems) == 0 {
		l.Null()
		return nil
	}
	js, err := json.Marshal(problemsJSON(problems))
	if err != nil {
		return err
	}
	l.JSONB(js)
	return nil
}

// problems encodes a directly loaded row's problems as data_problems rows.
func (e Encoder) problems(out *Encoded, id string, problems []validate.Problem) {
	out.Problems = out.Problems[:0]
	for _, pr := range problems {
		e.appendProblem(out, id, pr)
	}
}

// appendProblem adds one data_problems row to out.Problems.
func (e Encoder) appendProblem(out *Encoded, id string, pr validate.Problem) {
	p := &out.problem
	p.Reset()
	p.Str(string(e.entity))
	p.Str(id)
	p.Str(pr.Field)
	p.Str(pr.Code)
	p.Str(pr.Severity)
	p.Str(pr.Message)
	p.Int64(e.syncID)
	out.Problems = append(out.Problems, p.B...)
}

type problemJSON struct {
	F string `json:"f"`
	C string `json:"c"`
	S string `json:"s"`
	M string `json:"m"`
}

func problemsJSON(ps []validate.Problem) []problemJSON {
	out := make([]problemJSON, len(ps))
	for i, p := range ps {
		out[i] = problemJSON{p.Field, p.Code, p.Severity, p.Message}
	}
	return out
}
