# drctl: build, test, demo, bench, install.
# `make` builds bin/drctl; `make test` runs every test; `make asan` runs them
# under AddressSanitizer + UBSan; `make deps` installs the Debian packages.

PREFIX    ?= /usr/local
SHAREDIR  ?= $(PREFIX)/share/drctl
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/vendor-completions
MANDIR      ?= $(PREFIX)/share/man
VERSION   := 0.1.0
CC        ?= cc
BUILD     ?= build
BIN       ?= bin

# Every library the project links, one list per binary. pkg-config supplies
# the flags so Debian's include layout (lua5.4/, cjson/) stays out of the code.
DRCTL_PKGS      := lua5.4 libcjson libgit2 libcurl libpq libcrypto expat
NEON_LOCAL_PKGS := libcjson libmicrohttpd libpq
ALL_PKGS        := lua5.4 libcjson libcurl libpq libgit2 libmicrohttpd

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2 -Wvla -Wno-format-nonliteral
OPT      ?= -O2 -g
CFLAGS   += $(OPT) -std=c11 -D_GNU_SOURCE -pthread $(WARNINGS) -MMD -MP \
            -DDRCTL_VERSION='"$(VERSION)"' -DDRCTL_SHAREDIR='"$(SHAREDIR)"' \
            $(shell pkg-config --cflags $(DRCTL_PKGS) $(NEON_LOCAL_PKGS))
NL_LDLIBS := $(shell pkg-config --libs $(NEON_LOCAL_PKGS) libcrypto) -lm -pthread
LDLIBS   += $(shell pkg-config --libs $(DRCTL_PKGS)) -lm -lutil -pthread

# The test build (make hooks, into build-hooks/ and bin-hooks/) compiles in
# the fault points of common/testhook.h; the normal build has none.
ifdef TEST_HOOKS
CFLAGS  += -DDRCTL_TEST_HOOKS
endif

ifdef SANITIZER
CFLAGS  += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=$(SANITIZER)
endif

ifeq ($(V),)
Q := @
endif

# Three folders of C: common/ is linked into both programs, engine/ is
# drctl alone, neon-local/ is neon-local alone (drctl never links
# libmicrohttpd). The unit tests link all three, without the two mains.
COMMON_SRC := $(wildcard common/*.c)
ENGINE_SRC := $(filter-out engine/main.c,$(wildcard engine/*.c))
NL_SRC     := $(filter-out neon-local/main.c,$(wildcard neon-local/*.c))
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/%.o)
NL_OBJ     := $(NL_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC   := $(wildcard tests/unit/*.c)
UNIT_OBJ   := $(UNIT_SRC:%.c=$(BUILD)/%.o)
TOOLS      := $(BIN)/ptydrive $(BIN)/fsync-floor $(BIN)/webhook-receiver

.PHONY: all man deb hooks test test-suite contract-sdk unit asan valgrind bench demo demo-run demo-data deps install uninstall clean routine
all: $(BIN)/drctl $(BIN)/neon-local man

# The man pages, in scdoc, made from what they must agree with: drctl(1)
# holds each command's --help, neon-local(1) its --help, drctl-runbook(5)
# is docs/runbooks.md (tools/man.py). A page that scdoc or groff finds
# fault with fails the build.
MAN_SRC     ?= man
RUNBOOK_DOC ?= docs/runbooks.md
MAN_PAGES := $(BUILD)/man/drctl.1 $(BUILD)/man/neon-local.1 $(BUILD)/man/drctl-runbook.5
man: $(MAN_PAGES)

define render_man
	@command -v scdoc >/dev/null || { echo "scdoc is missing: apt-get install scdoc (or make deps)"; exit 1; }
	$(Q)scdoc < $@.scd > $@.tmp || { rm -f $@.tmp; exit 1; }
	$(Q)groff -k -man -Tutf8 -ww -z $@.tmp 2> $@.warnings; \
	    if [ -s $@.warnings ]; then cat $@.warnings; rm -f $@.tmp; exit 1; fi
	$(Q)rm -f $@.scd $@.warnings && mv $@.tmp $@
endef

$(BUILD)/man/drctl.1: $(MAN_SRC)/drctl.1.scd.in tools/man.py $(BIN)/drctl
	@mkdir -p $(@D)
	@echo "  MAN     $@"
	$(Q)python3 tools/man.py drctl $(BIN)/drctl $(SHAREDIR) $< $@.scd
	$(render_man)

$(BUILD)/man/neon-local.1: $(MAN_SRC)/neon-local.1.scd.in tools/man.py $(BIN)/neon-local
	@mkdir -p $(@D)
	@echo "  MAN     $@"
	$(Q)python3 tools/man.py neon-local $(BIN)/neon-local $< $@.scd
	$(render_man)

$(BUILD)/man/drctl-runbook.5: $(RUNBOOK_DOC) tools/man.py
	@mkdir -p $(@D)
	@echo "  MAN     $@"
	$(Q)python3 tools/man.py runbook $< $@.scd
	$(render_man)

$(BIN)/drctl: $(BUILD)/engine/main.o $(ENGINE_OBJ) $(COMMON_OBJ)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/neon-local: $(BUILD)/neon-local/main.o $(NL_OBJ) $(COMMON_OBJ)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(NL_LDLIBS)

$(BIN)/unit-tests: $(UNIT_OBJ) $(ENGINE_OBJ) $(NL_OBJ) $(COMMON_OBJ)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(NL_LDLIBS)

$(BIN)/ptydrive: tests/tools/ptydrive.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lutil

$(BIN)/webhook-receiver: tests/tools/webhook-receiver.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(shell pkg-config --libs libmicrohttpd libcjson) -pthread

$(BIN)/fsync-floor: bench/fsync_floor.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lm

# Each folder sees its own headers and common's; the unit tests see all.
$(BUILD)/common/%.o: INCLUDES := -Icommon
$(BUILD)/engine/%.o: INCLUDES := -Iengine -Icommon -I$(BUILD)/gen
$(BUILD)/neon-local/%.o: INCLUDES := -Ineon-local -Icommon
$(BUILD)/tests/unit/%.o: INCLUDES := -Itests/unit -Iengine -Ineon-local -Icommon -I$(BUILD)/gen

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) $(INCLUDES) -c -o $@ $<

# Lua source compiled into the engine (the neon and pg modules' functions
# written in Lua):
# engine/X.lua becomes the C string X_lua[] in $(BUILD)/gen/X_lua.h.
$(BUILD)/gen/%_lua.h: engine/%.lua
	@mkdir -p $(@D)
	$(Q){ echo 'static const char $*_lua[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$$/\\n"/' $<; echo ';'; } > $@
$(BUILD)/engine/neonmod.o: $(BUILD)/gen/neon_lua.h
$(BUILD)/engine/pgmod.o: $(BUILD)/gen/pg_lua.h

# Dependencies first, then a second make that parses this file again, so
# pkg-config sees the libraries deps just installed on a fresh machine.
test: deps
	@bash tests/contract/install.sh
	@$(MAKE) --no-print-directory test-suite

test-suite: $(BIN)/drctl $(BIN)/neon-local $(BIN)/unit-tests $(TOOLS) hooks
	@bash tests/run.sh

# drctl, neon-local and the unit tests with the test-only fault points, for
# the crash and fault-injection tests (tests/run.sh finds them in bin-hooks).
hooks:
	@$(MAKE) --no-print-directory BUILD=build-hooks BIN=bin-hooks TEST_HOOKS=1 \
	  bin-hooks/drctl bin-hooks/neon-local bin-hooks/unit-tests

# The team's routine back to back on a busy database, clean and under API
# faults (long: about ten minutes, so not part of make test).
routine: deps
	@$(MAKE) --no-print-directory $(BIN)/drctl $(BIN)/neon-local
	@bash tests/long/routine.sh

# neon-local driven by Neon's official TypeScript SDK, every answer checked
# against the spec the SDK ships (make test runs it too: 85-sdk-contract.sh).
contract-sdk: deps $(BIN)/neon-local
	DRCTL_BIN_DIR=$(BIN) bash tests/contract/sdk/run.sh

unit: $(BIN)/unit-tests
	@$(BIN)/unit-tests

# The sanitizer build lives in its own folders so it never mixes objects
# with the normal build.
# (the kill and fault tests use the test build, bin-hooks/)
asan: deps hooks
	@bash tests/contract/install.sh
	$(MAKE) BUILD=build-asan BIN=bin-asan SANITIZER=address,undefined OPT="-O1 -g" \
	  bin-asan/drctl bin-asan/neon-local bin-asan/unit-tests bin-asan/ptydrive bin-asan/fsync-floor \
	  bin-asan/webhook-receiver
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  DRCTL_BIN_DIR=$(CURDIR)/bin-asan bash tests/run.sh

# The unit tests, then drctl itself through a whole scenario on neon-local.
valgrind: $(BIN)/unit-tests $(BIN)/drctl $(BIN)/neon-local
	valgrind --error-exitcode=1 --leak-check=full $(BIN)/unit-tests
	@bash tests/long/valgrind-scenario.sh

bench: deps
	@$(MAKE) --no-print-directory $(BIN)/drctl $(BIN)/neon-local $(BIN)/fsync-floor
	@bash bench/run.sh
	@bash bench/neon_local.sh
	@bash bench/modules.sh
	@bash bench/scenario.sh
	@bash bench/drill.sh
	@bash bench/signing.sh

demo: deps
	@$(MAKE) --no-print-directory demo-run

demo-run: $(BIN)/drctl $(BIN)/neon-local
	@bash demo/run.sh

# The guide's schema and generated rows into a database you name:
#   make demo-data DEMO_URI=postgresql://... SCALE=10
demo-data:
	@test -n "$(DEMO_URI)" || { echo "give DEMO_URI=postgresql://... (and SCALE=N, default 1)"; exit 2; }
	psql "$(DEMO_URI)" -X -q -f demo/schema.sql
	psql "$(DEMO_URI)" -X -q -v scale=$(or $(SCALE),1) -f demo/generate.sql

deps:
	@bash .ci/deps.sh

install: $(BIN)/drctl $(BIN)/neon-local man
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SHAREDIR)/runbooks $(DESTDIR)$(SHAREDIR)/lua
	install -m 0755 $(BIN)/drctl $(DESTDIR)$(PREFIX)/bin/drctl
	install -m 0755 $(BIN)/neon-local $(DESTDIR)$(PREFIX)/bin/neon-local
	cp -R runbooks/. $(DESTDIR)$(SHAREDIR)/runbooks/
	cp -R lua/. $(DESTDIR)$(SHAREDIR)/lua/
	install -d $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 0644 completion/drctl.bash $(DESTDIR)$(BASHCOMPDIR)/drctl
	install -m 0644 completion/_drctl $(DESTDIR)$(ZSHCOMPDIR)/_drctl
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5
	install -m 0644 $(BUILD)/man/drctl.1 $(BUILD)/man/neon-local.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(BUILD)/man/drctl-runbook.5 $(DESTDIR)$(MANDIR)/man5/

# drctl_<version>_<arch>.deb (tools/deb.sh): built for /usr, Depends
# computed by dpkg-shlibdeps, lintian-clean. DEB_DIR: where it goes.
DEB_DIR ?= $(CURDIR)
deb:
	@bash tools/deb.sh $(VERSION) $(DEB_DIR)

# What install put there goes, and the folders it made if nothing else is
# in them (PREFIX itself stays).
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/drctl $(DESTDIR)$(PREFIX)/bin/neon-local
	rm -f $(DESTDIR)$(BASHCOMPDIR)/drctl $(DESTDIR)$(ZSHCOMPDIR)/_drctl
	rm -f $(DESTDIR)$(MANDIR)/man1/drctl.1 $(DESTDIR)$(MANDIR)/man1/neon-local.1 $(DESTDIR)$(MANDIR)/man5/drctl-runbook.5
	rm -rf $(DESTDIR)$(SHAREDIR)
	for d in $(BASHCOMPDIR) $(ZSHCOMPDIR) $(PREFIX)/share/bash-completion $(PREFIX)/share/zsh \
	         $(MANDIR)/man1 $(MANDIR)/man5 $(MANDIR) \
	         $(PREFIX)/share $(PREFIX)/bin; do \
	    [ ! -d "$(DESTDIR)$$d" ] || rmdir --ignore-fail-on-non-empty "$(DESTDIR)$$d"; \
	done

clean:
	rm -rf build build-asan bin bin-asan build-fuzz bin-fuzz build-cov bin-cov build-tsan bin-tsan build-hooks bin-hooks

# The long reliability runs, each in its own file: make crash-test (a kill
# at every transition), make soak (API faults at many seeds), make fuzz
# (libFuzzer harnesses), make load (neon-local under 200 clients), make
# coverage.
-include tests/crash/crash.mk tests/long/soak.mk tests/fuzz/fuzz.mk tests/load/load.mk tests/coverage/coverage.mk

-include $(wildcard $(BUILD)/common/*.d $(BUILD)/engine/*.d $(BUILD)/neon-local/*.d $(BUILD)/tests/unit/*.d)
