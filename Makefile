# slorad build. `make run` and `make check` are the two quick-start commands;
# both install missing Debian packages and fetch the default model first.

SHARED   ?= ../shared
BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
PYTHON   ?= /usr/bin/python3
VERSION  := 0.1.0

PKGS := libuv1-dev node-llhttp libopenblas-dev libjansson-dev check pkg-config \
        clang libclang-rt-14-dev python3-numpy python3-jinja2 python3-torch python3-matplotlib curl systemd nodejs \
        python3-venv python3-setuptools python3-wheel
# Only `make bench` needs these.
BENCH_PKGS := wrk

LLHTTP_SRC := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp

DEP_CFLAGS := $(shell pkg-config --cflags libuv jansson openblas 2>/dev/null)
DEP_LIBS   := $(shell pkg-config --libs libuv jansson openblas 2>/dev/null) -lpthread -lm
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

OPT      ?= -O2 -march=native
SAN      ?=
CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE -g $(OPT) $(SAN) -pthread
CFLAGS   := $(CFLAGS_COMMON) -Wall -Wextra -Werror -Iinclude -Isrc -I$(LLHTTP_INC) $(DEP_CFLAGS) \
            -DSLORA_VERSION=\"$(VERSION)\"
TP_CFLAGS := $(CFLAGS_COMMON) -w -I$(LLHTTP_INC)
LDFLAGS  += $(SAN) -pthread

SRCS     := $(filter-out src/main.c,$(wildcard src/*.c src/util/*.c))
OBJS     := $(SRCS:%.c=$(BUILD)/%.o) $(BUILD)/tp/llhttp.o $(BUILD)/tp/api.o $(BUILD)/tp/http.o
LIB      := $(BUILD)/libslora.a
TEST_SRCS := $(wildcard tests/check_*.c)
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/%.o)
SUITES   := $(patsubst tests/check_%.c,%,$(TEST_SRCS))

.PHONY: all deps bench-deps model oracle run check check-unit check-e2e check-asan check-kernels bench install format clean

all: $(BUILD)/slorad

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(TP_CFLAGS) -c $< -o $@

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

deps:
	@missing=""; for p in $(PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm

bench-deps:
	@$(MAKE) -s deps PKGS="$(BENCH_PKGS)"

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

run: deps model all
	$(BUILD)/slorad serve --listen 127.0.0.1:8080 --config conf/slorad.json --state-dir state

# llama.cpp as a test and benchmark oracle: node-llama-cpp with its CPU
# binaries only, in one npm call (two calls pull its GPU packages too). It
# needs Node 20, the image's own; Debian's nodejs (18) is never installed.
ORACLE ?= $(CURDIR)/build/oracle
NLC_VERSION := 3.21.1
$(ORACLE)/node_modules/node-llama-cpp/package.json:
	@v=$$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0); \
	if [ "$$v" -lt 20 ]; then \
	  echo "the llama.cpp oracle (node-llama-cpp $(NLC_VERSION)) needs Node.js >= 20; found $$(node --version 2>/dev/null || echo none)" >&2; exit 1; fi
	@mkdir -p $(ORACLE)
	cd $(ORACLE) && { [ -f package.json ] || echo '{"private": true}' > package.json; } && \
	  npm i -E --omit=optional --no-audit --no-fund node-llama-cpp@$(NLC_VERSION) @node-llama-cpp/linux-x64@$(NLC_VERSION)
oracle: $(ORACLE)/node_modules/node-llama-cpp/package.json

check: deps model all $(BUILD)/check_slora $(BUILD)/gguf_quantize oracle
	$(BUILD)/check_slora
	@pass=0; failed=""; for t in tests/e2e/*.sh; do echo "== $$t"; \
	  if BUILD=$(BUILD) PYTHON=$(PYTHON) SLORA_ORACLE=$(ORACLE) SLORA_SHARED=$(SHARED) bash $$t; then pass=$$((pass + 1)); \
	  else failed="$$failed $$t"; fi; done; \
	  nfail=$$(echo $$failed | wc -w); \
	  [ -z "$$failed" ] || echo "failed e2e scripts:$$failed"; \
	  echo "e2e: $$pass passed, $$nfail failed"; [ $$nfail -eq 0 ]

# The whole unit and e2e suite under ASan + UBSan; any report fails it (the
# e2e library also collects the daemons' reports from their log_path).
SAN_OPTIONS := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1 \
               UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
check-asan:
	$(SAN_OPTIONS) $(MAKE) BUILD=build-asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" check

# The unit suites under memcheck, in one process (CK_FORK=no) so every
# error counts.
valgrind: deps model $(BUILD)/check_slora
	@command -v valgrind >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind
	CK_FORK=no valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
	  --quiet $(BUILD)/check_slora

# The kernels' other compile-time paths (portable C; AVX2/FMA/F16C without
# AVX-512 or BMI2): the suites of the kernels that choose by #if.
KERNEL_SUITES := superlora quant matmul
check-kernels:
	$(MAKE) BUILD=build-portable OPT=-O2 build-portable/check_slora
	for s in $(KERNEL_SUITES); do CK_RUN_SUITE=$$s build-portable/check_slora || exit 1; done
	$(MAKE) BUILD=build-nobmi2 OPT="-O2 -mavx2 -mfma -mf16c" build-nobmi2/check_slora
	for s in $(KERNEL_SUITES); do CK_RUN_SUITE=$$s build-nobmi2/check_slora || exit 1; done

$(BUILD)/bench_model: bench/bench_model.c $(LIB)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(DEP_LIBS)

$(BUILD)/bench_tok: bench/bench_tok.c $(LIB)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(DEP_LIBS)

bench: deps bench-deps model all $(BUILD)/bench_model $(BUILD)/bench_tok
	@mkdir -p bench/results
	@for b in bench/*.sh; do [ -f "$$b" ] || continue; BUILD=$(BUILD) PYTHON=$(PYTHON) bash $$b || exit 1; done
	$(PYTHON) bench/report.py

$(BUILD)/bench_delta: bench/bench_delta.c $(LIB)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(DEP_LIBS)

$(BUILD)/bench_registry: bench/bench_registry.c $(LIB)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(DEP_LIBS)

SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
install: all model
	install -D -m 0755 $(BUILD)/slorad $(DESTDIR)$(PREFIX)/bin/slorad
	install -D -m 0644 models/stories260K.bin $(DESTDIR)$(PREFIX)/share/slorad/models/stories260K.bin
	install -D -m 0644 models/tok512.bin $(DESTDIR)$(PREFIX)/share/slorad/models/tok512.bin
	install -d $(DESTDIR)$(SYSCONFDIR)/slorad
	sed -e 's|"models/|"$(PREFIX)/share/slorad/models/|' conf/slorad.json > $(DESTDIR)$(SYSCONFDIR)/slorad/slorad.json
	install -D -m 0644 systemd/slorad.service $(DESTDIR)$(UNITDIR)/slorad.service
	sed -i -e 's|/usr/local/|$(PREFIX)/|g' -e 's|/etc/slorad/|$(SYSCONFDIR)/slorad/|g' $(DESTDIR)$(UNITDIR)/slorad.service
	install -D -m 0644 docs/operations.md $(DESTDIR)$(PREFIX)/share/doc/slorad/operations.md

# libFuzzer (clang, ASan+UBSan): every tests/fuzz/fuzz_<t>.c is a target
# with its seeds in tests/fuzz/corpus/<t>. `make fuzz FUZZ_SECONDS=N` runs
# them all, `make fuzz-<t>` one; new inputs go to build-fuzz/corpus-<t>,
# crashes to build-fuzz/crash-<t>-*, the run's output to build-fuzz/fuzz_<t>.log.
# `make check` replays every committed corpus (tests/e2e/fuzz_replay.sh).
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 65536
FUZZ_MAX_LEN_tokenizer := 8192
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
.PHONY: fuzz fuzz-lib $(FUZZ_TARGETS:%=fuzz-%) valgrind
fuzz: $(FUZZ_TARGETS:%=fuzz-%)
fuzz-lib: deps models/stories260K.bin models/tok512.bin
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
$(BUILD)/fuzz_%_replay: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ tests/fuzz/fuzz_$*.c tests/fuzz/replay.c $(LIB) $(DEP_LIBS)

format:
	clang-format -i $(wildcard src/*.c src/*.h src/util/*.[ch] include/slora/*.h tests/*.c)

clean:
	rm -rf build build-asan build-fuzz

-include $(OBJS:.o=.d) $(TEST_OBJS:.o=.d)

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

$(BUILD)/gguf_quantize: bench/gguf_quantize.c $(LIB)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(DEP_LIBS)
