package worker

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// The monitoring UI (asynqmon) loads its fonts from fonts.googleapis.com.
// A page of the office's must load nothing from a third party, so the
// fonts are served here, under MonitoringPath + "/fonts/", its pages are
// rewritten to use them, and each page gets a Content-Security-Policy
// that allows only this server, and exactly the inline scripts the page
// carries (by their hashes: asynqmon's page sets its settings and starts
// its loader in two inline scripts). Its styles stay 'unsafe-inline': the
// UI's component library writes its styles at run time.

//go:embed monitoring/fonts
var monitoringFonts embed.FS

// googleFonts are the stylesheets asynqmon's page links.
var googleFonts = []string{
	"https://fonts.googleapis.com/css?family=Roboto:300,400,500,700&amp;display=swap",
	"https://fonts.googleapis.com/css?family=Roboto:300,400,500,700&display=swap",
	"https://fonts.googleapis.com/icon?family=Material+Icons",
}

// inlineScript finds the inline scripts of a page.
var inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)

// localAssets serves the fonts and rewrites the HTML pages of next (the
// monitoring UI) as described above. The UI's API and static files pass
// through untouched.
func localAssets(next http.Handler) http.Handler {
	sub, _ := fs.Sub(monitoringFonts, "monitoring/fonts")
	fonts := http.StripPrefix(MonitoringPath+"/fonts/", http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, MonitoringPath)
		switch {
		case strings.HasPrefix(p, "/fonts/"):
			w.Header().Set("Cache-Control", "public, max-age=86400")
			fonts.ServeHTTP(w, r)
			return
		case strings.HasPrefix(p, "/api/"), strings.HasPrefix(p, "/static/"):
			next.ServeHTTP(w, r)
			return
		}
		rec := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		body := rec.body.Bytes()
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		ct := rec.header.Get("Content-Type")
		if ct == "" {
			// Set by the server at the first write, as it would have been.
			ct = http.DetectContentType(body)
			w.Header().Set("Content-Type", ct)
		}
		if strings.HasPrefix(ct, "text/html") {
			body = localPage(body)
			w.Header().Set("Content-Security-Policy", monitoringCSP(body))
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(body)
	})
}

// localPage is an HTML page of the UI that links the local fonts instead
// of Google's.
func localPage(page []byte) []byte {
	local := []byte(MonitoringPath + "/fonts/fonts.css")
	for _, u := range googleFonts {
		page = bytes.ReplaceAll(page, []byte(u), local)
	}
	// Both links now name the same stylesheet: keep one.
	link := []byte(`<link rel="stylesheet" href="` + string(local) + `"/>`)
	if i := bytes.Index(page, link); i >= 0 {
		rest := bytes.ReplaceAll(page[i+len(link):], link, nil)
		page = append(page[:i+len(link):i+len(link)], rest...)
	}
	return page
}

// monitoringCSP is the policy of a UI page: this server only, and the
// page's own inline scripts by hash.
func monitoringCSP(page []byte) string {
	var hashes []string
	for _, m := range inlineScript.FindAllSubmatch(page, -1) {
		sum := sha256.Sum256(m[1])
		hashes = append(hashes, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	return "default-src 'self'; script-src 'self' " + strings.Join(hashes, " ") +
		"; style-src 'self' 'unsafe-inline'; font-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
}

// bufferedResponse holds a response so that it can be rewritten.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) WriteHeader(status int)      { b.status = status }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
