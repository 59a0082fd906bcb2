# netd — run `make help` for the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := python3-venv iproute2 iptables nftables conntrack iputils-ping util-linux procps runc busybox-static containerd containernetworking-plugins podman radvd etcd-server
PROTO := proto/netd/v1/netd.proto

.PHONY: help dev deb proto test unit integration demo bench bench-deps bench-ab install lint clean

# `make install`: netd in its own venv under NETD_HOME, commands in PREFIX/bin, the unit in UNITDIR.
NETD_HOME ?= /opt/netd
PREFIX ?= /usr/local
UNITDIR ?= /etc/systemd/system
CNI_BIN_DIR ?= /opt/cni/bin

help:
	@echo "make dev          venv with netd (editable) and test tools; installs Debian packages if missing"
	@echo "make test         unit + integration tests (integration needs root)"
	@echo "make demo         netd's main job in a throwaway sandbox"
	@echo "make bench        netd vs CNI bridge plugin and netavark, results in bench/results/"
	@echo "make bench-ab A=REV [B=REV]  two builds of netd side by side (B: the working tree)"
	@echo "make install      netd in $(NETD_HOME), netd/netctl in $(PREFIX)/bin, netd-cni in $(CNI_BIN_DIR), the unit in $(UNITDIR)"
	@echo "make proto        regenerate netd/v1/*_pb2*.py from $(PROTO)"

deb:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

dev: deb $(VENV)/.installed

proto: $(VENV)/.installed
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=. $(PROTO)

unit: dev
	$(PY) -m pytest tests/unit -q

integration: dev
	$(PY) -m pytest tests/integration -q

test: dev
	$(PY) -m pytest tests -q

demo: dev
	$(PY) -m tests.demo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

BENCH_DEB_PACKAGES := containernetworking-plugins netavark golang-go golang-google-grpc-dev golang-google-protobuf-dev
GO_CLIENT := build/netd-bench-client

# The bench's Go client, built against Debian's Go packages (no module download).
$(GO_CLIENT): bench/client/main.go
	GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$(CURDIR)/build/gocache go build -o $@ ./bench/client

bench-deps: dev
	@$(MAKE) --no-print-directory deb DEB_PACKAGES="$(BENCH_DEB_PACKAGES)"
	@$(MAKE) --no-print-directory $(GO_CLIENT)

bench: bench-deps
	$(PY) -m bench.run

# Two builds side by side, attaches alternating: `make bench-ab A=HEAD~1` (B: the working tree).
bench-ab: bench-deps
	$(PY) -m bench.ab $(A) $(B)

install:
	@$(MAKE) --no-print-directory deb DEB_PACKAGES="python3-venv iproute2 nftables iptables conntrack"
	python3 -m venv $(NETD_HOME)
	$(NETD_HOME)/bin/python -m pip install -q .
	install -d $(PREFIX)/bin $(UNITDIR) $(CNI_BIN_DIR)
	ln -sf $(NETD_HOME)/bin/netd $(PREFIX)/bin/netd
	ln -sf $(NETD_HOME)/bin/netctl $(PREFIX)/bin/netctl
	ln -sf $(NETD_HOME)/bin/netd-cni $(CNI_BIN_DIR)/netd-cni
	sed 's#^ExecStart=/usr/local/bin/netd#ExecStart=$(PREFIX)/bin/netd#' systemd/netd.service > $(UNITDIR)/netd.service
	chmod 0644 $(UNITDIR)/netd.service
	@if [ "$(UNITDIR)" = /etc/systemd/system ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "installed; start it with: systemctl enable --now netd"
