# neon-local under load (tests/load/run.sh): 200 clients, 20,000 requests
# with faults on, then the final state, the resident memory and the exit on
# SIGTERM checked. make load-asan and make load-tsan run the same against
# neon-local built with AddressSanitizer + UBSan (build-asan/, bin-asan/) or
# ThreadSanitizer (build-tsan/, bin-tsan/), and fail on any report. The load
# generator itself is always the normal build (bin/loadgen).
# LOAD_CLIENTS, LOAD_REQUESTS, LOAD_CREATIONS, LOAD_SEED, LOAD_FAULTS change it.

LOADGEN := bin/loadgen

.PHONY: load load-asan load-tsan

$(LOADGEN): tests/load/loadgen.c
	@mkdir -p $(@D)
	@echo "  CC      $@"
	$(Q)$(CC) $(OPT) -std=c11 -D_GNU_SOURCE $(WARNINGS) $(shell pkg-config --cflags libcurl libcjson) \
	  -o $@ $< $(shell pkg-config --libs libcurl libcjson) -lm

load: $(BIN)/neon-local $(LOADGEN)
	NEON_LOCAL=$(CURDIR)/$(BIN)/neon-local LOADGEN=$(CURDIR)/$(LOADGEN) bash tests/load/run.sh

load-asan: $(LOADGEN)
	@$(MAKE) --no-print-directory BUILD=build-asan BIN=bin-asan SANITIZER=address,undefined OPT="-O1 -g" \
	  bin-asan/neon-local
	LOAD_SANITIZER=asan NEON_LOCAL=$(CURDIR)/bin-asan/neon-local LOADGEN=$(CURDIR)/$(LOADGEN) \
	  bash tests/load/run.sh

load-tsan: $(LOADGEN)
	@$(MAKE) --no-print-directory BUILD=build-tsan BIN=bin-tsan SANITIZER=thread OPT="-O1 -g" bin-tsan/neon-local
	LOAD_SANITIZER=tsan NEON_LOCAL=$(CURDIR)/bin-tsan/neon-local LOADGEN=$(CURDIR)/$(LOADGEN) \
	  bash tests/load/run.sh
