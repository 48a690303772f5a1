# make crash-test: every scenario runbook, drill and undo killed after each
# of its journal lines, then resumed (tests/crash/crash.sh; long: hours on
# two cores). CRASH_CASES="accidental-deletion undo" picks cases,
# CRASH_EVERY=N every Nth line, CRASH_LANES=N kills at once.
.PHONY: crash-test
crash-test: deps
	@bash tests/contract/install.sh
	@$(MAKE) --no-print-directory $(BIN)/drctl $(BIN)/neon-local hooks
	@bash tests/crash/crash.sh $(CRASH_CASES)
