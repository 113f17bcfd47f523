package layout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// sourceFile is one non-test Go file of the module, parsed.
type sourceFile struct {
	rel  string // slash-separated path from the module root
	file *ast.File
	fset *token.FileSet
}

// sources parses every non-test Go file of the module.
func sources(t *testing.T) []sourceFile {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from %s: %v", root, err)
	}
	var out []sourceFile
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		out = append(out, sourceFile{rel: filepath.ToSlash(rel), file: f, fset: fset})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 50 {
		t.Fatalf("found only %d Go files under %s: is the walk broken?", len(out), root)
	}
	return out
}

func under(rel string, dirs ...string) bool {
	for _, d := range dirs {
		if strings.HasPrefix(rel, d+"/") {
			return true
		}
	}
	return false
}

// Only worker imports asynq (and its web UI): the queue is an
// implementation detail of how jobs run, not something the jobs, the
// store or the commands know.
func TestAsynqOnlyInWorker(t *testing.T) {
	for _, sf := range sources(t) {
		for _, imp := range sf.file.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/hibiken/asynq") && !under(sf.rel, "worker") {
				t.Errorf("%s imports %s: only worker/ may", sf.rel, path)
			}
		}
	}
}

var (
	// schemaTable is a table (or sequence) of the worker's schema named in
	// a string.
	schemaTable = regexp.MustCompile(`\bsisnotify\.[a-z_]+`)
	// sqlWord is a word that starts or makes an SQL statement; prose
	// that names a table ("read from sisnotify.nights") has none.
	sqlWord = regexp.MustCompile(`(?i)\b(select|insert\s+into|update\s+\S+(\s+\w+)?\s+set|delete\s+from|copy|truncate|alter\s+table|create|drop|lock\s+table|nextval|to_regclass)\b`)
	// bareTable is a string that is nothing but a qualified table name.
	bareTable = regexp.MustCompile(`^sisnotify\.[a-z_]+$`)
)

// sqlLiterals returns the string literals of a file that are SQL against
// the worker's schema: a table of it next to an SQL word, or a bare
// qualified table name (a table handed to COPY).
func sqlLiterals(sf sourceFile) []string {
	var out []string
	ast.Inspect(sf.file, func(n ast.Node) bool {
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			return true
		}
		if bareTable.MatchString(s) || schemaTable.MatchString(s) && sqlWord.MatchString(s) {
			pos := sf.fset.Position(lit.Pos())
			out = append(out, sf.rel+":"+strconv.Itoa(pos.Line)+": "+strings.Join(strings.Fields(s), " "))
		}
		return true
	})
	return out
}

// SQL against the worker's schema lives in store (and in migrations):
// every statement on its tables is in one package, which the jobs call.
func TestSQLOnlyInStore(t *testing.T) {
	inStore := 0
	for _, sf := range sources(t) {
		found := sqlLiterals(sf)
		if under(sf.rel, "store", "migrations") {
			inStore += len(found)
			continue
		}
		for _, s := range found {
			if len(s) > 160 {
				s = s[:160] + "…"
			}
			t.Errorf("SQL against the sisnotify schema outside store: %s", s)
		}
	}
	// The check must see the statements it guards, or it guards nothing.
	if inStore < 20 {
		t.Errorf("found only %d SQL literals in store: the check no longer recognises the store's statements", inStore)
	}
}
