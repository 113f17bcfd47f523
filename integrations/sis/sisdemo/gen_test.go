package sisdemo

import (
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// Every phone of a clean row is a valid number (libphonenumber, the way
// the sync reads phones) written in E.164; every email is plain ASCII.
func TestContactsAreValid(t *testing.T) {
	g := newGen(Options{Seed: 5, AsOf: date.MustParse("2026-03-16")}, 0)
	n := 10000
	if testing.Short() {
		n = 3000
	}
	foreign := 0
	for i := range n {
		g.build(i)
		s := &g.s
		p, err := phonenumbers.Parse(s.phone, "KZ")
		if err != nil || !phonenumbers.IsValidNumber(p) || phonenumbers.Format(p, phonenumbers.E164) != s.phone {
			t.Errorf("%s (%s): phone %q is not a valid E.164 number", studentID(i), s.citizenship, s.phone)
		}
		if !strings.HasPrefix(s.phone, "+77") {
			foreign++
		}
		if !goodEmail.MatchString(s.email) || !strings.HasSuffix(s.email, "@student.example.edu") {
			t.Errorf("%s: email %q", studentID(i), s.email)
		}
	}
	if foreign < n/10 || foreign > n/5 {
		t.Errorf("%d foreign phones of %d", foreign, n)
	}
}
