package jobs_test

import (
	"strings"
	"testing"
)

// The office digest lists the students' open reports under what students
// reported, newest first, in its language; decided reports are not
// listed, and the deans' digests list none.
func TestDigestListsStudentReports(t *testing.T) {
	e := newEnv(t)
	e.exec(t, digestFixture)
	e.sync(t)
	r := newDigestRig(t, e, "office1@uni.example")
	e.evaluate(t, "2026-11-25")
	e.report(t, "S1", "lost-documents", "2026-11-23", nil)
	e.report(t, "S2", "address-changed", "2026-11-24", map[string]any{"moved_on": "2026-11-22"})
	decided := e.report(t, "S3", "status-changed", "2026-11-25", nil)
	e.dbExec(t, `UPDATE sisnotify.student_reports SET state = 'rejected', decided_by = 'anna' WHERE report_id = $1`, decided)
	r.run(t, "2026-11-25")
	got := r.mailTo(t)
	office := one(t, got, "office1@uni.example")
	order(t, "office digest", office.text,
		"== Сообщили студенты: 2 ==",
		"- S2 / R", ", Wei Zhang, Engineering — сообщение от 24 ноября: смена адреса.",
		"- S1 / R", ", Aigerim Bekova, Engineering — сообщение от 23 ноября: утеря документов.",
		"== Предстоящие")
	if strings.Contains(office.text, "S3 / R") {
		t.Errorf("a decided report is listed:\n%s", office.text)
	}
	if !strings.Contains(htmlPart(t, office), `id="reported"`) {
		t.Error("office HTML has no reported section")
	}
	for to, ms := range got {
		for _, m := range ms {
			if to != "office1@uni.example" && strings.Contains(m.text, " / R") {
				t.Errorf("a dean digest (%s) lists reports:\n%s", to, m.text)
			}
		}
	}
}
