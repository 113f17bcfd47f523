package console

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"strings"
)

//go:embed ui/action_*.html
var actionUI embed.FS

// actionErrorPage is the page of an action that was refused.
var actionErrorPage = template.Must(template.ParseFS(actionUI, "ui/action_error.html"))

// actionError answers an action refused with status: a page in the
// viewer's language that says what was wrong (the words of key) and that
// nothing changed, with a way back.
func (h *Handler) actionError(w http.ResponseWriter, r *http.Request, status int, key string) {
	lang := h.opt.Lang
	if v := viewerOf(r); v != nil && v.Lang != "" {
		lang = v.Lang
	}
	data := struct{ Lang, Title, Message, Nothing, Back, BackText string }{
		Lang: lang, Title: t(lang, "action.err.title"), Message: t(lang, key), Nothing: t(lang, "action.err.nothing"),
		Back: actionBack(r), BackText: t(lang, "action.back"),
	}
	var buf bytes.Buffer
	if err := actionErrorPage.Execute(&buf, data); err != nil {
		h.log.ErrorContext(r.Context(), "console: action error page", "err", err)
		http.Error(w, t(lang, key), status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// actionBack is the page an action's form was on: the student of an
// obligation or notice is not known when the id is wrong, so the way back
// is the list the action belongs to.
func actionBack(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/console/nights/") {
		return "/console/nights"
	}
	if strings.HasPrefix(r.URL.Path, "/console/notices/") {
		return "/console/failed"
	}
	return "/console/"
}
