package testenv

import (
	"os"
	"testing"
)

// LongEnv is the variable that turns on the long tests: the fault suite
// and the others that take tens of seconds (`make test-long`; `make check`,
// what CI runs, includes them). `make test` is the quick subset.
const LongEnv = "SISNOTIFY_TEST_LONG"

// Long skips the calling test unless SISNOTIFY_TEST_LONG=1. what says what
// makes it long. Call it first in the test: the Makefile's test-long target
// finds the long tests by this call on the line after `func TestX`.
func Long(tb testing.TB, what string) {
	tb.Helper()
	if os.Getenv(LongEnv) != "1" {
		tb.Skipf("long test (%s): runs with %s=1 (make test-long; make check runs it)", what, LongEnv)
	}
}
