package jobs

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/templates"
)

// The office digest of a roster of any size stays under 100 KB of HTML:
// built the way Run builds it (sections, cut, rendered, CSV) from n open
// obligations over every section, with long Cyrillic names and three sent
// notices each. SISNOTIFY_DIGEST_ROWS lists the sizes (default 40000; the
// figures of docs/architecture.md come from 40000,1000000).
func TestDigestHTMLSizeWhateverTheRoster(t *testing.T) {
	sizes := []int{40_000}
	if v := os.Getenv("SISNOTIFY_DIGEST_ROWS"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				t.Fatalf("SISNOTIFY_DIGEST_ROWS: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	set, err := templates.New()
	if err != nil {
		t.Fatal(err)
	}
	night := date.MustParse("2026-11-25")
	ruleIDs := []string{"registration", "passport-renewal", "stay-extension", "address-registration", "arrival-check-in",
		"exit-visa", "travel-dean-approval", "return-check-in", "visa-invitation", "term-travel-limit"}
	for _, n := range sizes {
		items := make([]*digestItem, n)
		for i := range items {
			id := "S" + strconv.Itoa(1_000_000+i)
			items[i] = &digestItem{
				DigestItem: store.DigestItem{
					ID: int64(i + 1), Rule: ruleIDs[i%len(ruleIDs)], StudentID: id, SubjectID: id,
					Due: int32(night.AddDays(29 - i%90)), Level: 3, Actions: int(rules.OfficeDigest),
					Name:    "Айгерим-Гульнара Бекова-Абдурахмонова-" + strconv.Itoa(i),
					Faculty: "Факультет международных отношений и права " + strconv.Itoa(i%10),
				},
				sent: []sentNotice{{on: night.AddDays(-5), level: 1, kind: 0}, {on: night.AddDays(-3), level: 2, kind: 1},
					{on: night.AddDays(-1), level: 3, kind: 0}, {on: night.AddDays(-1), level: 3, kind: 2}},
			}
			if i%10 == 3 {
				items[i].FoundLate = int(rules.OfficeDigest)
			}
		}
		var moot []*digestItem
		for i := range n / 100 {
			moot = append(moot, &digestItem{DigestItem: store.DigestItem{ID: int64(n + i + 1), Rule: "exit-visa", StudentID: "M" + strconv.Itoa(i), SubjectID: "TR-" + strconv.Itoa(i),
				Due: int32(night.AddDays(-3)), Level: 1, Name: "Moot Student", ClosedOn: int32(night), Reason: templates.MootDeparturePassed}})
		}
		r := &digestRecipient{key: "office1", audience: templates.AudienceOffice, lang: "ru", items: items, moot: moot}
		d := &Digest{Templates: set}
		lists := &officeLists{}
		for i := range 40 {
			lists.failed = append(lists.failed, templates.FailedNotice{NoticeID: strconv.Itoa(i), StudentID: "S1", Rule: "registration",
				Audience: "student", Channel: "email", Code: templates.FailMailboxRejected, Detail: "550 5.1.1"})
			lists.problems = append(lists.problems, templates.DataProblem{Entity: "student", RowID: "S" + strconv.Itoa(i), Field: "phone", Code: "invalid_phone"})
		}
		lists.failedTotal, lists.problemsTotal = 40, 40
		out, files, c, err := d.build(night, r, map[int64]bool{}, lists)
		if err != nil {
			t.Fatal(err)
		}
		csvBytes := 0
		for _, f := range files {
			csvBytes += len(f.Data)
		}
		t.Logf("%d rows: HTML %d bytes, text %d bytes, %d rows shown, CSV %d bytes", n, len(out.HTML), len(out.Text), c.shown, csvBytes)
		if len(out.HTML) >= 100_000 {
			t.Errorf("%d rows: %d bytes of HTML, want under 100 KB", n, len(out.HTML))
		}
		if len(files) != 1 || !strings.Contains(out.Text, "Остальные ") {
			t.Errorf("%d rows: %d attachments, and the sections do not say how many more", n, len(files))
		}
	}
}
