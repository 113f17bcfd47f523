# The README's commands. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
GO ?= go
PKGS := ./...

.PHONY: build test lint demo bench bench-sync bench-deliver fuzz clean-testdb

build:
	$(GO) build -o sisnotify ./cmd/sisnotify

# Formatting, vet, and every test against the real PostgreSQL and Redis,
# with the race detector; then the figures the fault tests measured (lost,
# duplicated, in flight per scenario).
REPORT := $(CURDIR)/test-report.txt
test: lint
	@rm -f $(REPORT) test-output.txt
	@set -o pipefail; SISNOTIFY_TEST_REPORT=$(REPORT) $(GO) test -race -count=1 $(PKGS) 2>&1 | tee test-output.txt; status=$$?; \
	  if [ -f $(REPORT) ]; then echo; echo "Measured by the fault, crash and replica tests:"; sort $(REPORT); fi; \
	  echo; echo "packages: $$(grep -c '^ok' test-output.txt) passed, $$(grep -cP '^FAIL\t' test-output.txt) failed"; \
	  exit $$status

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

demo: build
	./sisnotify demo

# Syncs a generated 1,000,000-student SIS and prints rows/s, peak memory and
# the ratio to a raw COPY of the same rows (see docs/benchmarks.md).
bench-sync:
	$(GO) test ./jobs/ -run '^$$' -bench BenchmarkSync -benchtime 1x -timeout 30m -v

# Whole nights at 10,000, 100,000 and 1,000,000 students: each phase's
# wall time, rate and peak RSS next to a raw COPY of the same rows and the
# SMTP sink's one-connection rate (SISNOTIFY_BENCH_SIZES=10000 for one size).
bench:
	$(GO) test ./jobs/ -run '^$$' -bench BenchmarkNight -benchtime 1x -timeout 60m

# 10,000 notices through asynq, PostgreSQL, templates and SMTP.
bench-deliver:
	$(GO) test ./jobs/ -run '^$$' -bench BenchmarkDeliver -benchtime 1x -v

# Every fuzz target (func FuzzX in a *_test.go), FUZZTIME each, one at a
# time: go test -fuzz runs one target of one package. A failing input is
# written to that package's testdata/fuzz/FuzzX/ and replayed by every
# plain `go test` from then on: commit it with the fix.
FUZZTIME ?= 30s

fuzz:
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | cut -c6-); do \
	    echo "== $$dir $$t"; \
	    $(GO) test $$dir -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s -parallel 1; \
	  done; \
	done

# Drops test databases that a killed test run left behind.
clean-testdb:
	$(GO) run ./cmd/testdb clean -age 0s
