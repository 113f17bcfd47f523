package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `make test-long` finds the long tests by testenv.Long on the line after
// `func TestX(`: a call anywhere else would make a test that neither
// `make test` nor `make test-long` runs.
func TestLongIsCalledFirst(t *testing.T) {
	n := 0
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != "../.." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") || path == "../../integrations/testenv/long_test.go" {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		lines := strings.Split(string(raw), "\n")
		for i, l := range lines {
			if !strings.Contains(l, "testenv.Long(") || strings.HasPrefix(strings.TrimSpace(l), "//") {
				continue
			}
			n++
			if i == 0 || !strings.HasPrefix(lines[i-1], "func Test") || !strings.HasSuffix(lines[i-1], "(t *testing.T) {") {
				t.Errorf("%s:%d: testenv.Long is not the first line of a func TestX(t *testing.T): make test-long would not find the test", path, i+1)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no long test found: is the walk rooted at the repository?")
	}
}
