# The two set-up commands of the README:
#   make book   installs into .venv and builds the book from the most complete committed results
#               (PROFILE=auto: full when results/full holds student runs, else cpu; PROFILE=smoke
#               computes its own toy results)
#   make test   installs into .venv and runs the tests (which build the book at smoke once)
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= auto

.PHONY: book test install clean

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(VENV)/.installed

book: $(VENV)/.installed
	$(PY) -m ecodistill book --profile $(PROFILE)

test: $(VENV)/.installed
	$(PY) -m pytest

clean:
	rm -rf _build book/generated results/smoke .cache
