# slorad build. `make run` and `make check` are the two quick-start commands;
# both install missing Debian packages and fetch the default model first.
#
# Nothing here is computed from the installed system when the Makefile is
# parsed: `deps` runs first and the build runs in a fresh $(MAKE) after it,
# and the pkg-config flags are evaluated lazily (on first use, in a recipe),
# so a fresh machine builds in one go (.ci/fresh_make.sh proves it).

SHARED   ?= ../shared
BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
PYTHON   ?= /usr/bin/python3
PKG_CONFIG ?= pkg-config
VERSION  := 0.1.0

# Debian packages by target (installed with --no-install-recommends when
# missing). `make run`: build and run the daemon. `make check`: adds the
# test tools (python3 references and the trainer's packaging test, clang's
# fuzzer runtime for the corpus replays, promtool, Redis/HAProxy/hiredis
# for the scale-out tests, systemd-analyze and the /bin/kill the unit
# names). `make bench`: adds the load generators.
# Debian's nodejs and npm are never installed (Node >= 20 comes from
# elsewhere, see node-check); for the same reason node-llhttp is not
# installed either (it depends on nodejs): its C sources are extracted
# from the package into $(LLHTTP).
RUN_PKGS   := gcc libc6-dev make pkg-config libuv1-dev libopenblas-dev libjansson-dev libhiredis-dev \
              curl ca-certificates
CHECK_PKGS := check python3 python3-numpy python3-torch python3-jinja2 python3-venv \
              python3-setuptools python3-wheel clang libclang-rt-14-dev prometheus redis-server \
              haproxy systemd procps
BENCH_PKGS := wrk hyperfine python3

# llhttp's C sources and header, copied from an installed node-llhttp
# (LLHTTP_SYS) or extracted from the downloaded package.
LLHTTP_SYS ?= /usr/share/llhttp
LLHTTP     := $(BUILD)/llhttp

# Evaluated once, on first use (never at parse time): $(call lazy,VAR,shell command).
lazy = $(eval $1 := $$(shell $2))$($1)
DEP_CFLAGS = $(call lazy,DEP_CFLAGS,$(PKG_CONFIG) --cflags libuv jansson openblas hiredis)
# (the cached part is its own variable: lazy replaces the variable it
# caches, which would drop anything appended after the call)
DEP_PKG_LIBS = $(call lazy,DEP_PKG_LIBS,$(PKG_CONFIG) --libs libuv jansson openblas hiredis)
DEP_LIBS   = $(DEP_PKG_LIBS) -lpthread -lm
CHECK_LIBS = $(call lazy,CHECK_LIBS,$(PKG_CONFIG) --libs check)

OPT      ?= -O2 -march=native
SAN      ?=
CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE -g $(OPT) $(SAN) -pthread
CFLAGS    = $(CFLAGS_COMMON) -Wall -Wextra -Werror -Iinclude -Isrc -I$(LLHTTP) $(DEP_CFLAGS) \
            -DSLORA_VERSION=\"$(VERSION)\"
TP_CFLAGS = $(CFLAGS_COMMON) -w -I$(LLHTTP)
LDFLAGS  += $(SAN) -pthread

SRCS     := $(filter-out src/main.c,$(wildcard src/*.c src/util/*.c))
TP_OBJS  := $(BUILD)/tp/llhttp.o $(BUILD)/tp/api.o $(BUILD)/tp/http.o
OBJS     := $(SRCS:%.c=$(BUILD)/%.o) $(TP_OBJS)
LIB      := $(BUILD)/libslora.a
TEST_SRCS := $(wildcard tests/check_*.c)
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/%.o)
SUITES   := $(patsubst tests/check_%.c,%,$(TEST_SRCS))

.PHONY: all build deps check-deps bench-deps node-check oracle model run check check-tests \
        check-asan check-kernels bench bench-run bench-load install format clean \
        cluster cluster-down

all: $(BUILD)/slorad

$(BUILD)/%.o: %.c | $(LLHTTP)/llhttp.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(TP_OBJS): $(BUILD)/tp/%.o: $(LLHTTP)/llhttp.h
	@mkdir -p $(dir $@)
	$(CC) $(TP_CFLAGS) -c $(LLHTTP)/$*.c -o $@

# The sources and the header come together (llhttp.h is written last).
$(LLHTTP)/llhttp.h:
	@rm -rf $(LLHTTP) && mkdir -p $(LLHTTP)
	@if [ -f $(LLHTTP_SYS)/llhttp.c ]; then \
	  cp $(LLHTTP_SYS)/llhttp.c $(LLHTTP_SYS)/api.c $(LLHTTP_SYS)/http.c $(LLHTTP)/ && \
	  cp $(LLHTTP_SYS)/../include/llhttp/llhttp.h $(LLHTTP)/llhttp.h.tmp; \
	else \
	  echo "extracting llhttp from Debian's node-llhttp package (not installed: it depends on nodejs)"; \
	  tmp=$$(mktemp -d) && chmod 755 $$tmp && \
	  (cd $$tmp && apt-get download -q node-llhttp >/dev/null 2>&1) && \
	  dpkg-deb -x $$tmp/node-llhttp_*.deb $$tmp/x && \
	  cp $$tmp/x/usr/share/llhttp/llhttp.c $$tmp/x/usr/share/llhttp/api.c \
	     $$tmp/x/usr/share/llhttp/http.c $(LLHTTP)/ && \
	  cp $$tmp/x/usr/share/include/llhttp/llhttp.h $(LLHTTP)/llhttp.h.tmp; \
	  rc=$$?; rm -rf $$tmp; [ $$rc -eq 0 ] || { echo "could not get node-llhttp (apt-get download)" >&2; exit 1; }; \
	fi
	@mv $(LLHTTP)/llhttp.h.tmp $@

$(LIB): $(OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/slorad: $(BUILD)/src/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)

# The test runner calls every tests/check_<m>.c's slora_<m>_suite().
$(BUILD)/tests/suites.h: $(TEST_SRCS)
	@mkdir -p $(dir $@)
	@printf '%s\n' $(SUITES) | awk '{print "X(" $$1 ")"}' > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/runner.o: tests/runner.c $(BUILD)/tests/suites.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(BUILD)/tests -c $< -o $@

$(BUILD)/check_slora: $(BUILD)/tests/runner.o $(TEST_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(DEP_LIBS)

# $(call apt_install,packages): install the missing ones.
apt_install = missing=""; for p in $1; do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $$missing; \
	fi

deps:
	@$(call apt_install,$(RUN_PKGS))
check-deps: deps
	@$(call apt_install,$(CHECK_PKGS))
bench-deps: deps
	@$(call apt_install,$(BENCH_PKGS))

# Node.js >= 20 for the llama.cpp oracle and the openai client test. It is
# never installed from Debian (bookworm's nodejs is 18): install it from
# NodeSource (deb.nodesource.com, package nodejs) or put a node >= 20 on PATH.
NODE_MIN := 20
node-check:
	@v=$$(node --version 2>/dev/null || true); m=$${v#v}; m=$${m%%.*}; \
	if ! [ "$$m" -ge $(NODE_MIN) ] 2>/dev/null; then \
	  echo "Node.js >= $(NODE_MIN) is needed (found: $${v:-none}). Install it from NodeSource" \
	       "(package nodejs from deb.nodesource.com); never Debian's nodejs/npm." >&2; exit 1; \
	fi; command -v npm >/dev/null || { echo "npm (shipped with Node.js $$v) is missing" >&2; exit 1; }

# llama.cpp as a test and benchmark oracle: node-llama-cpp with its CPU
# binaries only (prebuilt), SLORA_ORACLE=$(ORACLE) for the tests. One npm
# command: installed separately, the optional GPU packages (~700 MB) come
# along. Shared by every BUILD (check-asan does not install it again).
NLC_VERSION := 3.21.1
ORACLE ?= $(CURDIR)/build/oracle
oracle: node-check
	@if [ "$$(node -p "require('$(ORACLE)/node_modules/node-llama-cpp/package.json').version" \
	      2>/dev/null)" != $(NLC_VERSION) ]; then \
	  mkdir -p $(ORACLE) && cd $(ORACLE) && \
	  { [ -f package.json ] || echo '{"private": true}' > package.json; } && \
	  npm i -E --omit=optional --no-audit --no-fund node-llama-cpp@$(NLC_VERSION) \
	    @node-llama-cpp/linux-x64@$(NLC_VERSION); \
	fi

MODEL_URL := https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K
models/stories260K.bin models/tok512.bin:
	@mkdir -p models
	@f=$(notdir $@); \
	if [ -f $(SHARED)/models/$$f ]; then cp $(SHARED)/models/$$f $@.tmp; \
	else curl -fsSL -o $@.tmp $(MODEL_URL)/$$f; fi; \
	want=$$(awk -v f=$$f '$$2==f {print $$1}' conf/models.sha256); \
	got=$$(sha256sum $@.tmp | cut -d' ' -f1); \
	if [ "$$want" != "$$got" ]; then echo "sha256 mismatch for $$f: $$got" >&2; rm -f $@.tmp; exit 1; fi; \
	mv $@.tmp $@

model: models/stories260K.bin models/tok512.bin

# Our own conversion (llama.cpp's lives in $(SHARED)/models; tests compare both).
models/stories260K.gguf: models/stories260K.bin models/tok512.bin $(BUILD)/slorad
	$(BUILD)/slorad convert --model models/stories260K.bin --tokenizer models/tok512.bin -o $@
model: models/stories260K.gguf

# Install first, then build in a fresh make (nothing parsed before deps ran).
build: deps
	@$(MAKE) --no-print-directory all model
run: build
	$(BUILD)/slorad serve --listen 127.0.0.1:8080 --config conf/slorad.json --state-dir state

check: check-deps oracle
	@$(MAKE) --no-print-directory check-tests
check-tests: export SLORA_ORACLE = $(ORACLE)
check-tests: model all $(BUILD)/check_slora
	$(BUILD)/check_slora
	@pass=0; failed=""; for t in tests/e2e/*.sh; do echo "== $$t"; \
	  if BUILD=$(BUILD) PYTHON=$(PYTHON) SLORA_SHARED=$(SHARED) bash $$t; then pass=$$((pass + 1)); \
	  else failed="$$failed $$t"; fi; done; \
	  nfail=$$(echo $$failed | wc -w); \
	  [ -z "$$failed" ] || echo "failed e2e scripts:$$failed"; \
	  echo "e2e: $$pass passed, $$nfail failed"; [ $$nfail -eq 0 ]

# The whole unit and e2e suite under ASan + UBSan; any report fails it (the
# e2e library also collects the daemons' reports from their log_path).
SAN_OPTIONS := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1 \
               UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
check-asan:
	$(SAN_OPTIONS) $(MAKE) BUILD=build-asan ORACLE=$(ORACLE) OPT=-O1 SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" check

# The unit suites under memcheck, in one process (CK_FORK=no) so every
# error counts.
valgrind: check-deps
	@$(call apt_install,valgrind)
	@$(MAKE) --no-print-directory model $(BUILD)/check_slora
	CK_FORK=no valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
	  --quiet $(BUILD)/check_slora

# The kernels' other compile-time paths (portable C; AVX2/FMA/F16C without
# AVX-512 or BMI2): the suites of the kernels that choose by #if.
KERNEL_SUITES := superlora superlora_kernels quant matmul vec
check-kernels:
	$(MAKE) BUILD=build-portable OPT=-O2 build-portable/check_slora
	for s in $(KERNEL_SUITES); do CK_RUN_SUITE=$$s build-portable/check_slora || exit 1; done
	$(MAKE) BUILD=build-nobmi2 OPT="-O2 -mavx2 -mfma -mf16c" build-nobmi2/check_slora
	for s in $(KERNEL_SUITES); do CK_RUN_SUITE=$$s build-nobmi2/check_slora || exit 1; done

$(BUILD)/bench_model: bench/bench_model.c $(LIB)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(DEP_LIBS)

$(BUILD)/bench_tok: bench/bench_tok.c $(LIB)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(DEP_LIBS)

bench: bench-deps oracle
	@$(MAKE) --no-print-directory bench-run
bench-run: export SLORA_ORACLE = $(ORACLE)
bench-run: model all $(BUILD)/bench_model $(BUILD)/bench_tok $(BUILD)/bench_load
	@mkdir -p bench/results
	@for b in bench/*.sh; do [ -f "$$b" ] || continue; BUILD=$(BUILD) PYTHON=$(PYTHON) SHARED=$(SHARED) bash $$b || exit 1; done
	$(PYTHON) bench/report.py

# One part of bench-run alone: load time and RSS on the Llama-3.2-1B shape
# (bench/load.sh, 3.2 GB of models in /tmp/slora-bench/load while it runs).
bench-load: bench-deps oracle
	@$(MAKE) --no-print-directory model all $(BUILD)/bench_load
	SLORA_ORACLE=$(ORACLE) BUILD=$(BUILD) PYTHON=$(PYTHON) SHARED=$(SHARED) bash bench/load.sh
	$(PYTHON) bench/report.py

$(BUILD)/bench_delta: bench/bench_delta.c $(LIB)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(DEP_LIBS)

$(BUILD)/bench_registry: bench/bench_registry.c $(LIB)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(DEP_LIBS)

# A local scale-out cluster (docs/scale-out.md): redis-server, three
# replicas on 8081-8083 and haproxy on 8080, logs under $(BUILD)/cluster.
cluster: deps model all
	BUILD=$(BUILD) bash conf/cluster.sh up
cluster-down:
	BUILD=$(BUILD) bash conf/cluster.sh down

SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
install: all model
	install -D -m 0755 $(BUILD)/slorad $(DESTDIR)$(PREFIX)/bin/slorad
	install -D -m 0644 models/stories260K.bin $(DESTDIR)$(PREFIX)/share/slorad/models/stories260K.bin
	install -D -m 0644 models/tok512.bin $(DESTDIR)$(PREFIX)/share/slorad/models/tok512.bin
	install -d $(DESTDIR)$(SYSCONFDIR)/slorad
	@# The config holds key hashes: 0640, group slorad (created by sysusers.d).
	sed -e 's|"models/|"$(PREFIX)/share/slorad/models/|' conf/slorad.json > $(BUILD)/slorad.json.install
	install -m 0640 $(BUILD)/slorad.json.install $(DESTDIR)$(SYSCONFDIR)/slorad/slorad.json
	install -D -m 0644 systemd/slorad.sysusers $(DESTDIR)$(SYSUSERSDIR)/slorad.conf
	@if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null; then \
	  systemd-sysusers $(SYSUSERSDIR)/slorad.conf && chgrp slorad $(SYSCONFDIR)/slorad/slorad.json; \
	else \
	  echo "on the target: systemd-sysusers; chgrp slorad $(SYSCONFDIR)/slorad/slorad.json"; \
	fi
	install -D -m 0644 systemd/slorad.service $(DESTDIR)$(UNITDIR)/slorad.service
	sed -i -e 's|/usr/local/|$(PREFIX)/|g' -e 's|/etc/slorad/|$(SYSCONFDIR)/slorad/|g' $(DESTDIR)$(UNITDIR)/slorad.service
	install -D -m 0644 docs/operations.md $(DESTDIR)$(PREFIX)/share/doc/slorad/operations.md
	install -D -m 0644 systemd/slorad@.service $(DESTDIR)$(UNITDIR)/slorad@.service
	sed -i -e 's|/usr/local/|$(PREFIX)/|g' -e 's|/etc/slorad/|$(SYSCONFDIR)/slorad/|g' $(DESTDIR)$(UNITDIR)/slorad@.service
	install -D -m 0644 conf/haproxy.cfg $(DESTDIR)$(PREFIX)/share/slorad/haproxy.cfg
	install -D -m 0644 docs/scale-out.md $(DESTDIR)$(PREFIX)/share/doc/slorad/scale-out.md

# libFuzzer (clang, ASan+UBSan): every tests/fuzz/fuzz_<t>.c is a target
# with its seeds in tests/fuzz/corpus/<t>. `make fuzz FUZZ_SECONDS=N` runs
# them all, `make fuzz-<t>` one; new inputs go to build-fuzz/corpus-<t>,
# crashes to build-fuzz/crash-<t>-*, the run's output to build-fuzz/fuzz_<t>.log.
# `make check` replays every committed corpus (tests/e2e/fuzz_replay.sh).
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 65536
FUZZ_MAX_LEN_tokenizer := 8192
FUZZ_MAX_LEN_model := 131072
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
.PHONY: fuzz fuzz-lib $(FUZZ_TARGETS:%=fuzz-%) valgrind
fuzz: $(FUZZ_TARGETS:%=fuzz-%)
fuzz-lib: check-deps
	@$(MAKE) --no-print-directory models/stories260K.bin models/tok512.bin
	$(MAKE) BUILD=build-fuzz CC=clang OPT="-O1 -g" SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" build-fuzz/libslora.a
$(FUZZ_TARGETS:%=fuzz-%): fuzz-%: fuzz-lib
	clang $(CFLAGS_COMMON) -Iinclude $(FUZZ_SAN) -fsanitize=fuzzer -o build-fuzz/fuzz_$* \
	  tests/fuzz/fuzz_$*.c build-fuzz/libslora.a $(DEP_LIBS)
	@mkdir -p build-fuzz/corpus-$*
	build-fuzz/fuzz_$* -max_total_time=$(FUZZ_SECONDS) -max_len=$(or $(FUZZ_MAX_LEN_$*),$(FUZZ_MAX_LEN)) \
	  -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix=build-fuzz/crash-$*- \
	  $(if $(wildcard tests/fuzz/$*.dict),-dict=tests/fuzz/$*.dict) \
	  build-fuzz/corpus-$* tests/fuzz/corpus/$* >build-fuzz/fuzz_$*.log 2>&1 \
	  || { tail -60 build-fuzz/fuzz_$*.log; exit 1; }
	@grep -E '^(stat::|#[0-9]+ +DONE)' build-fuzz/fuzz_$*.log

# The replay runner of one target: its entry point without libFuzzer.
$(BUILD)/fuzz_%_replay: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(wildcard tests/fuzz/*.h) $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ tests/fuzz/fuzz_$*.c tests/fuzz/replay.c $(LIB) $(DEP_LIBS)

format:
	clang-format -i $(wildcard src/*.c src/*.h src/util/*.[ch] include/slora/*.h tests/*.c)

clean:
	rm -rf build build-asan build-fuzz

-include $(SRCS:%.c=$(BUILD)/%.d) $(BUILD)/src/main.d $(TEST_OBJS:.o=.d)

# Test-only driver of the chat-template engine (tests/e2e/chat_templates.sh).
$(BUILD)/tmpl_render: tests/template/tmpl_render.c $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(DEP_LIBS)

$(BUILD)/bench_engine: bench/bench_engine.c $(LIB)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(DEP_LIBS)

# The stories110M-shaped synthetic model of the benchmarks.
$(BUILD)/bench-stories110M.bin: | $(BUILD)/slorad
	$(BUILD)/slorad gen-model --dim 768 --hidden 2048 --layers 12 --heads 12 --kv-heads 12 \
	  --vocab 32000 --seq-len 1024 --seed 1 --shared-classifier -o $@.tmp && mv $@.tmp $@

$(BUILD)/bench_matmul: bench/bench_matmul.c $(LIB)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(DEP_LIBS)


$(BUILD)/bench_load: bench/bench_load.c $(LIB)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(DEP_LIBS)
