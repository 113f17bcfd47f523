package mail

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// emailRE matches anything that looks like an address: a run of non-space,
// non-delimiter characters around an @.
var emailRE = regexp.MustCompile(`[^\s<>"'(),;:\[\]]*@[^\s<>"'(),;:\[\]]+`)

const maxDetail = 300

// redact removes addresses and the given secrets from s (server replies,
// error texts) and keeps it to one short line.
func redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 3 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	s = emailRE.ReplaceAllString(s, "[address]")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxDetail {
		cut := maxDetail
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
