# libFuzzer harnesses (tests/fuzz/README.md): `make fuzz` builds every
# harness with clang into build-fuzz/ and bin-fuzz/ and runs each one for
# FUZZ_RUNS executions or FUZZ_SECONDS, whichever comes first (run.sh),
# failing on any crash, leak or timeout; `make fuzz-build` only builds them. The project's objects are compiled again with clang,
# instrumented for coverage (fuzzer-no-link) and checked by ASan + UBSan.

FUZZ_HARNESSES := params timefmt jsonlua journal redact nlapi s3xml neonreply
# On an idle core the slowest harness (journal, ~4,000 a second) makes a
# million executions in about 250 s and the others in 15 to 110 s; two at
# a time, eight harnesses bounded by 360 s each end within 24 minutes.
FUZZ_SECONDS   ?= 360
FUZZ_RUNS      ?= 1000000
FUZZ_CC        ?= clang
FUZZ_SANITIZE  := address,undefined

.PHONY: fuzz fuzz-build fuzz-bins

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) bash tests/fuzz/run.sh $(FUZZ_HARNESSES)

fuzz-build:
	@$(MAKE) --no-print-directory BUILD=build-fuzz BIN=bin-fuzz CC=$(FUZZ_CC) \
	  SANITIZER=fuzzer-no-link,$(FUZZ_SANITIZE) OPT="-O1 -g" fuzz-bins

# Inside the recursive make above: BUILD is build-fuzz, so COMMON_OBJ and
# the others name the instrumented objects.
ifeq ($(BUILD),build-fuzz)
FUZZ_LIB_OBJ := $(ENGINE_OBJ) $(NL_OBJ) $(COMMON_OBJ)
# Two harnesses compile the file they test into themselves, to reach the
# static decoders it keeps behind its API: its object is left out.
FUZZ_SKIP_s3xml     := build-fuzz/engine/s3.o
FUZZ_SKIP_neonreply := build-fuzz/engine/neon.o

fuzz-bins: $(FUZZ_HARNESSES:%=bin-fuzz/fuzz-%)
.SECONDARY: $(FUZZ_HARNESSES:%=build-fuzz/tests/fuzz/%.o)

build-fuzz/tests/fuzz/%.o: INCLUDES := -Itests/fuzz -Iengine -Ineon-local -Icommon -Ibuild-fuzz/gen
build-fuzz/tests/fuzz/%.o: build-fuzz/gen/neon_lua.h build-fuzz/gen/pg_lua.h

.SECONDEXPANSION:
bin-fuzz/fuzz-%: build-fuzz/tests/fuzz/%.o $$(filter-out $$(FUZZ_SKIP_$$*),$$(FUZZ_LIB_OBJ))
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) -fsanitize=fuzzer,$(FUZZ_SANITIZE) -o $@ $^ $(LDLIBS) $(NL_LDLIBS)

-include $(wildcard build-fuzz/tests/fuzz/*.d)
endif
