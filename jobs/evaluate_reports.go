package jobs

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/jobs/calendar"
	"github.com/iec-almaty/sisnotify/jobs/config"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
	"github.com/iec-almaty/sisnotify/store"
)

// studentReports are tonight's open reports, by student: what the rules
// see of them, and the night's decisions on done reports.
type studentReports struct {
	rules  map[string][]rules.Report // lost documents, status changed
	moved  map[string]date.Date      // the latest reported move
	paused []int64                   // obligations whose student notices a done report pauses
	lapsed []int64                   // done reports whose pause ran out
	// reported are the students with open reports: a night evaluates them
	// whatever their wake date.
	reported map[string]bool
}

// students returns the students with open reports.
func (sr *studentReports) students() []string {
	ids := make([]string, 0, len(sr.reported))
	for id := range sr.reported {
		ids = append(ids, id)
	}
	return ids
}

// addressReportWindow is how close (in days) the SIS's moved_on must be to
// a reported move to be the same move.
const addressReportWindow = 7

// loadReports reads the open reports and decides, for each done report,
// whether it still pauses its obligation tonight: from the report's date
// for report_pause working days.
func (e *Evaluate) loadReports(ctx context.Context, ev *store.Evaluation, cal *calendar.Calendar, asOf date.Date) (*studentReports, error) {
	rows, err := ev.EvalReports(ctx)
	if err != nil {
		return nil, err
	}
	pause := config.DefaultReportPause
	if e.Config != nil {
		pause = e.Config.ReportPause
	}
	sr := &studentReports{rules: map[string][]rules.Report{}, moved: map[string]date.Date{}, reported: map[string]bool{}}
	for _, r := range rows {
		sr.reported[r.StudentID] = true
		switch k := rules.ParseReportKind(r.Kind); k {
		case rules.ReportLostDocuments, rules.ReportStatusChanged:
			if r.ReportedOn != 0 {
				sr.rules[r.StudentID] = append(sr.rules[r.StudentID], rules.Report{ID: r.ID, Kind: k, ReportedOn: r.ReportedOn})
			}
		case rules.ReportAddressChanged:
			if r.MovedOn != 0 && r.MovedOn > sr.moved[r.StudentID] {
				sr.moved[r.StudentID] = r.MovedOn
			}
		case rules.ReportDone:
			if r.ObligationID == 0 || r.ReportedOn == 0 {
				continue
			}
			if asOf < cal.AddWorkingDays(r.ReportedOn, pause) {
				sr.paused = append(sr.paused, r.ObligationID)
			} else {
				sr.lapsed = append(sr.lapsed, r.ID)
			}
		}
	}
	if err := ev.ReportsPause(ctx, sr.paused); err != nil {
		return nil, err
	}
	return sr, nil
}

// apply gives student s its open reports. A reported move stands in for
// the SIS's moved_on, so that address-registration opens at once, anchored
// on the reported date; when the SIS then records a move within 7 days of
// it (before or after), that is the same move: the anchor stays the
// reported date, and an address registered on or after the earlier of
// the two dates is done. A move the SIS records more than 7 days after the
// reported one is a new move, anchored on the SIS's date.
func (sr *studentReports) apply(s *rules.Student) {
	s.Reports = sr.rules[s.ID]
	reported, ok := sr.moved[s.ID]
	if !ok {
		return
	}
	sis := s.MovedOn
	if sis > reported+addressReportWindow {
		return
	}
	if sis != 0 && sis >= reported-addressReportWindow && s.AddressRegisteredOn >= min(sis, reported) {
		s.AddressRegisteredOn = max(s.AddressRegisteredOn, reported)
	}
	s.MovedOn = reported
}

// EvaluateStudent evaluates student id alone for asOf, as the night would
// (the same rules, configuration and records), inside the snapshot lock,
// and returns the ids of the notices it created: what a report from the
// student page needs at once (a lost-documents report's urgent office
// email) rather than at the next night. The caller queues them
// (worker.Enqueuer.Run). It fails with store.ErrBusy while a sync or a
// night runs: the night then acts on the report itself.
func (e *Evaluate) EvaluateStudent(ctx context.Context, db *sqlx.DB, id string, asOf date.Date) ([]int64, error) {
	tx, err := store.BeginSnapshotTx(ctx, db)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	ev := store.NewStudentEvaluation(tx.Conn(), id)
	last, ok, err := ev.LastSeenNight(ctx)
	if err != nil {
		return nil, err
	}
	if ok && last > asOf.String() {
		return nil, fmt.Errorf("evaluate student %s on %s: %w (%s)", id, asOf, ErrPastNight, last)
	}
	before, err := ev.MaxNoticeID(ctx)
	if err != nil {
		return nil, err
	}
	log := e.Log
	if log == nil {
		log = discardLog
	}
	engine, err := e.engine(ctx, ev, log)
	if err != nil {
		return nil, err
	}
	if err := ev.CreateStage(ctx); err != nil {
		return nil, err
	}
	reps, err := e.loadReports(ctx, ev, engine.Calendar(), asOf)
	if err != nil {
		return nil, err
	}
	if _, _, err := e.evaluateAll(ctx, ev, engine, reps, asOf); err != nil {
		return nil, err
	}
	if _, err := ev.Record(ctx, asOf, e.staleAfter(), e.OfficeEmails); err != nil {
		return nil, err
	}
	if _, err := ev.ReportsSettle(ctx, asOf, reps.lapsed); err != nil {
		return nil, err
	}
	ids, err := ev.NoticeIDsAfter(ctx, id, before)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return ids, nil
}

// EvaluateStudent is (&Evaluate{Config: cfg, OfficeEmails: officeEmails}).EvaluateStudent.
func EvaluateStudent(ctx context.Context, db *sqlx.DB, cfg *config.File, officeEmails []string, id string, asOf date.Date) ([]int64, error) {
	return (&Evaluate{Config: cfg, OfficeEmails: officeEmails}).EvaluateStudent(ctx, db, id, asOf)
}
