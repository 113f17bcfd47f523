package templates

import "testing"

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
