package main

import (
	"os"
	"sync"
	"testing"
)

var figuresMu sync.Mutex

// figure logs a measured line (lost, duplicated, in flight…) and, when
// SISNOTIFY_TEST_REPORT names a file, appends it there: `make test-long` prints
// that file at the end, so CI shows the fault suite's figures without -v.
func figure(t *testing.T, line string) {
	t.Helper()
	t.Log(line)
	path := os.Getenv("SISNOTIFY_TEST_REPORT")
	if path == "" {
		return
	}
	figuresMu.Lock()
	defer figuresMu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("test report: %v", err)
		return
	}
	defer f.Close()
	_, _ = f.WriteString(t.Name() + ": " + line + "\n")
}
