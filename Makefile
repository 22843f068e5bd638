# The two commands a newcomer needs:  make run  ·  make test
# Both create .venv and install what they need on first use (and again when pyproject.toml changes).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install browser run test bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

# Browser tests drive Debian's Chromium (Playwright's own download is not reachable here), with CJK fonts
# so screenshots show the Chinese a person sees.
browser:
	@command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-cjk)

run: install
	$(PY) -m service.run

test: install browser
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) -m bench.rules

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
