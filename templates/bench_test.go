package templates

import (
	"reflect"
	"testing"
)

// BenchmarkNotice renders one student email (subject, text and HTML): the
// template's share of a delivery's cost.
func BenchmarkNotice(b *testing.B) {
	s, err := New()
	if err != nil {
		b.Fatal(err)
	}
	n := sample("registration", AudienceStudent, "ru", 2, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Notice(n); err != nil {
			b.Fatal(err)
		}
	}
}

// The view copies every field of Notice (templates/templates.go says why
// it does not embed it): a field added to Notice must reach the templates.
func TestNoticeViewHasEveryNoticeField(t *testing.T) {
	view := reflect.TypeOf(noticeView{})
	notice := reflect.TypeOf(Notice{})
	for i := range notice.NumField() {
		f := notice.Field(i)
		vf, ok := view.FieldByName(f.Name)
		if !ok || vf.Type != f.Type {
			t.Errorf("noticeView lacks Notice.%s (%s)", f.Name, f.Type)
		}
	}
	n := sample("registration", AudienceStudent, "en", 2, 0)
	n.Departure, n.Return = n.Due.AddDays(1), n.Due.AddDays(9)
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.view(n)
	if err != nil {
		t.Fatal(err)
	}
	rv := reflect.ValueOf(v)
	nv := reflect.ValueOf(n)
	for i := range notice.NumField() {
		name := notice.Field(i).Name
		if name == "Lang" || name == "Steps" {
			continue // normalised by view
		}
		if !reflect.DeepEqual(rv.FieldByName(name).Interface(), nv.Field(i).Interface()) {
			t.Errorf("view.%s = %v, want the notice's %v", name, rv.FieldByName(name).Interface(), nv.Field(i).Interface())
		}
	}
}
