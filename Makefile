# bee-trace: `make run` and `make test` set up everything on a fresh Debian/Ubuntu machine (root).
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
CLANG ?= clang-19
BUILD := build
# One translation unit includes every program file (bpf/bee_trace.bpf.c): maps and kfunc
# declarations exist once (libbpf 1.1's object linker cannot merge kfunc externs).
BPF_UNIT := bpf/bee_trace.bpf.c
BPF_OBJECT := bee_trace/bpf/bee_trace.bpf.o
# Test-only programs (tests/bpf/): built beside the others, never linked into the object.
TEST_BPF_OBJS := $(patsubst tests/bpf/%.bpf.c,$(BUILD)/tests/%.bpf.o,$(wildcard tests/bpf/*.bpf.c))
APT_PACKAGES := clang-19 llvm-19 libbpf-dev libbpf1 bpftool python3-venv make
# Only the tests need these: a real Prometheus server scrapes --metrics-address.
TEST_APT_PACKAGES := prometheus

.PHONY: all deps apt test-apt bench-apt venv bpf run test lint clean bench

all: deps bpf

deps: apt venv

# Install only what is missing, so a set-up machine starts at once.
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

test-apt:
	@missing=""; for p in $(TEST_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	touch $@

$(BUILD)/vmlinux.h:
	@mkdir -p $(BUILD)
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@

$(BUILD)/bee_trace.bpf.o: bpf/*.c bpf/*.h $(BUILD)/vmlinux.h
	$(CLANG) -O2 -g -target bpf -D__TARGET_ARCH_x86 -Wall -Werror -I$(BUILD) -Ibpf -c $(BPF_UNIT) -o $@

$(BUILD)/tests/%.bpf.o: tests/bpf/%.bpf.c bpf/*.h $(BUILD)/vmlinux.h
	@mkdir -p $(dir $@)
	$(CLANG) -O2 -g -target bpf -D__TARGET_ARCH_x86 -Wall -Werror -I$(BUILD) -Ibpf -c $< -o $@

# `gen object` on the one object strips DWARF and keeps the BTF that CO-RE needs.
$(BPF_OBJECT): $(BUILD)/bee_trace.bpf.o
	@mkdir -p $(dir $@)
	bpftool gen object $@ $< || { rm -f $@; exit 1; }
	$(PYTHON) -m bee_trace.buildinfo $@ $(CLANG) bpf/*.c bpf/*.h

bpf: $(BPF_OBJECT) $(TEST_BPF_OBJS)

run: deps bpf
	$(VENV)/bin/bee-trace run

test: deps test-apt bpf
	$(VPY) -m pytest -q tests

# ruff and mypy read their settings from pyproject.toml.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The comparison rows need the tools they compare with; the instructions row, valgrind.
BENCH_APT_PACKAGES := bpftrace auditd valgrind

bench-apt:
	@missing=""; for p in $(BENCH_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

bench: deps bench-apt bpf
	$(VENV)/bin/bee-trace bench

clean:
	rm -rf $(BUILD) $(BPF_OBJECT) $(dir $(BPF_OBJECT))build-info.json
