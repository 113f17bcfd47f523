package studentpage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"strings"
	texttemplate "text/template"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/templates"
)

// confirmation is the small email that confirms a report to the student,
// in their language: what was reported and when, that the office will
// check it, and the office's contacts. It names nothing of the student
// but what they reported.
type confirmation struct {
	Lang, Subject, Hello, Intro, What, Next, Footnote string
	Office                                            templates.Office
	L                                                 map[string]string
}

var confirmText = texttemplate.Must(texttemplate.New("text").Parse(`{{.Hello}}

{{.Intro}}
- {{.What}}

{{.Next}}

{{.Office.Name}}
{{if .Office.Address}}{{.L.address}}: {{.Office.Address}}
{{end}}{{if .Office.Hours}}{{.L.hours}}: {{.Office.Hours}}
{{end}}{{if .Office.Phone}}{{.L.phone}}: {{.Office.Phone}}
{{end}}{{if .Office.Email}}{{.L.email}}: {{.Office.Email}}
{{end}}
{{.Footnote}}
`))

var confirmHTML = template.Must(template.New("html").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Subject}}</title>
</head>
<body style="margin:0;padding:0;background:#f3f4f6;">
<div style="max-width:640px;margin:0 auto;padding:24px;background:#ffffff;font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:1.5;color:#1f2328;">
<p>{{.Hello}}</p>
<p>{{.Intro}}</p>
<ul><li>{{.What}}</li></ul>
<p>{{.Next}}</p>
<p><b>{{.Office.Name}}</b>{{if .Office.Address}}<br>{{.L.address}}: {{.Office.Address}}{{end}}{{if .Office.Hours}}<br>{{.L.hours}}: {{.Office.Hours}}{{end}}{{if .Office.Phone}}<br>{{.L.phone}}: {{.Office.Phone}}{{end}}{{if .Office.Email}}<br>{{.L.email}}: <a href="mailto:{{.Office.Email}}">{{.Office.Email}}</a>{{end}}</p>
<p style="font-size:12px;color:#57606a;">{{.Footnote}}</p>
</div>
</body>
</html>
`))

// confirm emails the confirmation of report id to the student, when they
// have an email and a Mailer is set. A failure is logged: the report is
// recorded and the page confirms it either way.
func (h *Handler) confirm(ctx context.Context, v visit, lang string, rep store.StudentReport, id int64) {
	if h.opt.Mail == nil || v.student.Email == "" {
		return
	}
	msg, err := h.confirmation(ctx, lang, rep)
	if err == nil {
		msg.To = v.student.Email
		sum := sha256.Sum256([]byte(rep.DedupKey()))
		msg.MessageID = "<report." + hex.EncodeToString(sum[:16]) + "@sisnotify>"
		msg.Headers = map[string]string{
			mail.HeaderKind: "report", mail.HeaderStudent: rep.StudentID, mail.HeaderAudience: "student",
		}
		_, _, err = h.opt.Mail.Send(ctx, msg)
	}
	if err != nil {
		h.log.WarnContext(ctx, "student page: confirmation email not sent", "student_id", rep.StudentID, "report_id", id, "err", err)
	}
}

// confirmation renders the confirmation of rep in lang.
func (h *Handler) confirmation(ctx context.Context, lang string, rep store.StudentReport) (mail.Message, error) {
	var what string
	switch rep.Kind {
	case store.StudentReportDone:
		title := ""
		obs, err := h.store.StudentPageObligations(ctx, rep.StudentID)
		if err != nil {
			return mail.Message{}, err
		}
		for _, o := range obs {
			if o.ID == rep.ObligationID {
				title = h.opt.Templates.RuleTitle(lang, o.Rule)
			}
		}
		what = fmt.Sprintf(word(lang, "mail.kind.done"), title)
	case store.StudentReportAddress:
		what = fmt.Sprintf(word(lang, "mail.kind.address-changed"), templates.FormatDate(lang, rep.MovedOn))
	case store.StudentReportStatus:
		what = fmt.Sprintf(word(lang, "mail.kind.status-changed"), word(lang, "status."+rep.NewStatus))
	default:
		what = word(lang, "mail.kind."+rep.Kind)
	}
	office := h.opt.Office.Localized(lang)
	if office.Name == "" {
		office.Name = word(lang, "office")
	}
	c := confirmation{
		Lang: lang, Subject: word(lang, "mail.subject"), Hello: word(lang, "mail.hello"),
		Intro: fmt.Sprintf(word(lang, "mail.intro"), templates.FormatDate(lang, rep.ReportedOn)),
		What:  strings.TrimSpace(what), Next: word(lang, "mail.next"), Footnote: word(lang, "mail.footnote"),
		Office: office,
		L: map[string]string{"address": word(lang, "office.address"), "hours": word(lang, "office.hours"),
			"phone": word(lang, "office.phone"), "email": word(lang, "office.email")},
	}
	var text, html strings.Builder
	if err := confirmText.Execute(&text, c); err != nil {
		return mail.Message{}, err
	}
	if err := confirmHTML.Execute(&html, c); err != nil {
		return mail.Message{}, err
	}
	return mail.Message{Subject: c.Subject, Text: text.String(), HTML: html.String()}, nil
}
