# Every scenario runbook under API faults at 20 seeds each
# (tests/long/soak.sh; long: hours, so not part of make test). A table of
# seeds passed / seeds run per runbook, then the failing seeds and why.
# SOAK_SEEDS, SOAK_FIRST_SEED, SOAK_TESTS, SOAK_TIMEOUT, SOAK_JOBS change it.

.PHONY: soak

soak: deps
	@$(MAKE) --no-print-directory $(BIN)/drctl $(BIN)/neon-local
	@bash tests/long/soak.sh
