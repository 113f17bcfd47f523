package templates

import (
	"bytes"
	"fmt"
)

// Summary is what the student page says of one open obligation, in the
// words of the rule's student notice: its title, the notice's lead (what
// happened and what to do, by when), its list items and its deadline line.
type Summary struct {
	Title    string
	Lead     string
	Steps    []string
	Deadline string
}

// StudentSummary renders the summary of n, a student notice of the
// obligation on the page's day (n.AsOf), as plain text (the page escapes
// it). A rule without student templates is ErrNoTemplate.
func (s *Set) StudentSummary(n Notice) (Summary, error) {
	n.Audience = AudienceStudent
	p, err := s.lookup(n)
	if err != nil {
		return Summary{}, err
	}
	v, err := s.view(n)
	if err != nil {
		return Summary{}, err
	}
	render := func(name string) (string, error) {
		var b bytes.Buffer
		if err := p.text.ExecuteTemplate(&b, name, v); err != nil {
			return "", fmt.Errorf("templates: %s/%s summary %s: %w", v.Lang, v.Rule, name, err)
		}
		return finish(v.Lang, oneLine(b.String())), nil
	}
	out := Summary{Title: v.RuleTitle}
	if out.Lead, err = render("lead"); err != nil {
		return Summary{}, err
	}
	for _, b := range []string{"step1", "step2", "step3", "step4", "step5", "step6"} {
		st, err := render(b)
		if err != nil {
			return Summary{}, err
		}
		if st != "" {
			out.Steps = append(out.Steps, st)
		}
	}
	if out.Deadline, err = render("deadline"); err != nil {
		return Summary{}, err
	}
	return out, nil
}

// Localized is o as a page in lang shows it: the name, address and hours
// given for lang where the configuration gives them.
func (o Office) Localized(lang string) Office { return o.in(Lang(lang)) }
