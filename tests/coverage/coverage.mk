# Measured coverage and fault injection (included by the Makefile).
#
#   make coverage     the whole suite against a gcc --coverage build in
#                     build-cov/ and bin-cov/, then line and branch coverage
#                     per program and per file (tests/coverage/report.sh)
#   make faults       the unit tests' fault injection (the Nth allocation,
#                     write, fsync or rename failing) in the test build
#   make faults-asan  the same under AddressSanitizer and UBSan
#
# The coverage build is also a test build (TEST_HOOKS): one set of binaries
# serves the tests that need the fault points and those that do not, and the
# hooks are inert unless a test sets their variables.

COV_MAKE := $(MAKE) --no-print-directory BUILD=build-cov BIN=bin-cov TEST_HOOKS=1 \
            OPT="-O0 -g --coverage" LDFLAGS=--coverage

.PHONY: coverage coverage-build coverage-report faults faults-asan

coverage-build:
	@$(COV_MAKE) bin-cov/drctl bin-cov/neon-local bin-cov/unit-tests \
	  bin-cov/ptydrive bin-cov/fsync-floor bin-cov/webhook-receiver

# Counters start at zero. Every .gcda exists and is writable by all before
# the suite runs, because some tests run drctl as nobody and libgcov keeps a
# file's owner and mode when it merges into it.
coverage: deps coverage-build
	@bash tests/contract/install.sh
	@find build-cov bin-cov -name '*.gcda' -delete
	@bin-cov/unit-tests no-test-has-this-name >/dev/null
	@bin-cov/drctl --version >/dev/null
	@bin-cov/neon-local --help >/dev/null 2>&1 || true
	@chmod -R a+rwX build-cov bin-cov
	@status=0; DRCTL_BIN_DIR=$(CURDIR)/bin-cov DRCTL_HOOKS_BIN_DIR=$(CURDIR)/bin-cov \
	  nice -n 10 bash tests/run.sh || status=$$?; \
	  bash tests/coverage/report.sh; \
	  [ $$status -eq 0 ] || echo "coverage: the suite had failures (exit $$status): the figures above include them"; \
	  exit $$status

# The figures of the last `make coverage` again (or after running some tests
# by hand against bin-cov/).
coverage-report:
	@bash tests/coverage/report.sh

faults: hooks
	@bin-hooks/unit-tests fault_injection_

faults-asan:
	@$(MAKE) --no-print-directory BUILD=build-asan-hooks BIN=bin-asan-hooks TEST_HOOKS=1 \
	  SANITIZER=address,undefined OPT="-O1 -g" bin-asan-hooks/unit-tests
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 bin-asan-hooks/unit-tests fault_injection_
