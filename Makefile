# The README's commands. `make check` is what CI runs (.ci/run): lint, the
# quick tests and the long ones. `make test` is the quick subset.
SHELL := /bin/bash
GO ?= go
PKGS := ./...

.PHONY: build check test test-long lint demo bench bench-sync bench-deliver bench-rate fuzz clean-testdb simulate

build:
	$(GO) build -o sisnotify ./cmd/sisnotify

# What CI runs: formatting and vet, the quick tests, then the long ones.
check: test test-long

# Formatting, vet, and every test but the long ones, against the real
# PostgreSQL and Redis, with the race detector: a few minutes.
test: lint
	@rm -f test-output.txt
	@set -o pipefail; $(GO) test -race -count=1 -timeout 6m $(PKGS) 2>&1 | tee test-output.txt; status=$$?; \
	  echo; echo "packages: $$(grep -c '^ok' test-output.txt) passed, $$(grep -cP '^FAIL\t' test-output.txt) failed (the long tests: make test-long)"; \
	  exit $$status

# The long tests (testenv.Long; SISNOTIFY_TEST_LONG=1): the fault suite
# (Redis flushed and restarted mid-night, SMTP failures, the SIS failing,
# PostgreSQL restarted, SIGKILL among 10,000 deliveries), the replicas,
# the security and browser checks, the compose file's services, and the
# other tests that take tens of seconds; then the figures they measured
# (lost, duplicated, in flight per scenario). A long test is one whose
# first line calls testenv.Long.
REPORT := $(CURDIR)/test-report.txt
LONG_TESTS = $(shell awk '$$1 == "func" && $$2 ~ /^Test[A-Za-z0-9_]*[^A-Za-z0-9_]/ { n = $$2; sub(/[^A-Za-z0-9_].*/, "", n); next } n != "" && /testenv[.]Long/ { print n } { n = "" }' \
	$$(find . -name '*_test.go' -not -path './.git/*') | sort -u | paste -sd'|' -)

test-long:
	@rm -f $(REPORT) test-long-output.txt
	@set -o pipefail; SISNOTIFY_TEST_LONG=1 SISNOTIFY_TEST_REPORT=$(REPORT) $(GO) test -race -count=1 -timeout 30m -run '^($(LONG_TESTS))$$' $(PKGS) 2>&1 | tee test-long-output.txt; status=$$?; \
	  if [ -f $(REPORT) ]; then echo; echo "Measured by the fault, crash and replica tests:"; sort $(REPORT); fi; \
	  echo; echo "packages: $$(grep -c '^ok' test-long-output.txt) passed, $$(grep -cP '^FAIL\t' test-long-output.txt) failed (long tests only)"; \
	  exit $$status

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

demo: build
	./sisnotify demo

# Syncs a generated 1,000,000-student SIS and prints rows/s, peak memory and
# the ratio to the plain read of the same rows (see docs/benchmarks.md).
bench-sync:
	$(GO) test ./jobs/ -run '^$$' -bench BenchmarkSync -benchtime 1x -timeout 30m -v

# Whole nights at 10,000, 100,000 and 1,000,000 students
# (SISNOTIFY_BENCH_SIZES=10000 for one size): a first night, then the next
# on an unchanged SIS. It prints the machine (CPU, Go, PostgreSQL, Redis);
# before each night, the plain COPY (SELECT * FROM sis.<table>) of the SIS
# tables (the targets' baseline) and the sync's own sorted read; each
# phase's wall time, rate, peak RSS and CPU busy, next to the SMTP sink's
# one-connection rate and asynq's no-op rate; each night's notices; then
# the figures against issue 18's targets (stated for 1,000,000 students).
# SISNOTIFY_BENCH_RUNS=3 runs each size 3 times and prints each figure's
# range.
bench:
	$(GO) test ./jobs/ -run '^$$' -bench BenchmarkNight -benchtime 1x -timeout 60m

# 10,000 notices through asynq, PostgreSQL, templates and SMTP.
bench-deliver:
	$(GO) test ./jobs/ -run '^$$' -bench BenchmarkDeliver -benchtime 1x -v

# 1,000 emails at SISNOTIFY_MAIL_RATE=50/s through two serve replicas:
# duration, the most emails in one second, duplicates, losses.
bench-rate:
	$(GO) test ./cmd/sisnotify/ -run '^$$' -bench BenchmarkServeMailRate -benchtime 1x -v -timeout 10m

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

# A simulated academic year under faults (package simulation): NIGHTS
# nights from 1 September, STUDENTS students, SEED for the world and the
# faults (FAULTS=0: none). It prints each night and ends with the summary
# line; a broken invariant stops it with the seed, the night and the
# evidence. `make test-long` runs its first nights.
NIGHTS ?= 365
STUDENTS ?= 2000
SEED ?= 1
FAULTS ?= 1

simulate:
	@sum=$$(mktemp); log=$$(mktemp); \
	  SISNOTIFY_TEST_LONG=1 SISNOTIFY_SIM_NIGHTS=$(NIGHTS) SISNOTIFY_SIM_STUDENTS=$(STUDENTS) SISNOTIFY_SIM_SEED=$(SEED) \
	  SISNOTIFY_SIM_FAULTS=$(FAULTS) SISNOTIFY_SIM_SUMMARY=$$sum \
	  $(GO) test ./simulation/ -run '^TestSimulation$$' -count=1 -timeout 90m -v 2>&1 | tee $$log | grep --line-buffered -E 'night [0-9-]+:|invariant|FAIL|panic'; \
	  if grep -q '^ok' $$log; then status=0; else status=1; tail -40 $$log; fi; \
	  cat $$sum; rm -f $$sum $$log; exit $$status

# Drops test databases that a killed test run left behind.
clean-testdb:
	$(GO) run ./cmd/testdb clean -age 0s
