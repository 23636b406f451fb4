# sensorimotor: `make demo` runs the whole product on the simulated device; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN ?= runs/quick

.PHONY: demo test test-slow test-all bench fuzz docs lint venv tools firmware clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/ci.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/ci.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

## demo: train the quick preset (swing-up), run it 16 s on the twin (same task) over a pty while recording, replay, summarize
demo: venv
	$(BIN)/sim train --preset quick --out $(RUN) --force
	$(BIN)/hw run --twin --config $(RUN)/config.yaml --model $(RUN)/policy.onnx --duration 16 \
		--record $(RUN)/run.mcap --json $(RUN)/run.json
	$(BIN)/hw replay $(RUN)/run.mcap --model $(RUN)/policy.onnx --json $(RUN)/replay.json
	$(PY) -m sensorimotor.control.summary $(RUN)

## tools: system tools the tests use (gcc with ASan/UBSan; avr-gcc, avr-libc and libsimavr for the AVR port; the Arduino core for the sketch; arm-none-eabi-gcc, newlib and QEMU for the Cortex-M port), installed when missing
tools:
	@command -v gcc >/dev/null 2>&1 || { echo "installing gcc (apt-get)"; apt-get update -qq && apt-get install -y -qq gcc libc6-dev; }
	@command -v avr-gcc >/dev/null 2>&1 || { echo "installing gcc-avr, avr-libc (apt-get)"; apt-get update -qq && apt-get install -y -qq gcc-avr avr-libc binutils-avr; }
	@test -e /usr/include/simavr/sim_avr.h || { echo "installing simavr, libsimavr-dev (apt-get)"; apt-get update -qq && apt-get install -y -qq simavr libsimavr-dev; }
	@command -v arm-none-eabi-gcc >/dev/null 2>&1 || { echo "installing gcc-arm-none-eabi, newlib (apt-get)"; apt-get update -qq && apt-get install -y -qq gcc-arm-none-eabi libnewlib-arm-none-eabi; }
	@command -v qemu-system-arm >/dev/null 2>&1 || { echo "installing qemu-system-arm (apt-get)"; apt-get update -qq && apt-get install -y -qq qemu-system-arm; }
	@test -e /usr/share/arduino/hardware/arduino/avr/cores/arduino/Arduino.h || { echo "installing arduino-core-avr (apt-get)"; apt-get update -qq && apt-get install -y -qq arduino-core-avr; }

## firmware: the firmware's native build, for firmware in the loop (`hw run --twin --firmware firmware/build/native/smp_native`)
firmware: venv tools
	$(PY) firmware/build.py

## test: the default suite (unit, oracle, tiny end-to-end, hil over a pty, the firmware natively); minutes on 2 cores
test: venv tools
	$(PY) -m pytest -m "not slow" -q --durations=25

## test-slow: quick-preset training must swing up and balance, in sim and on the twin
test-slow: venv
	$(PY) -m pytest -m slow -q --durations=5

test-all: test test-slow

## bench: benchmarks with ratios against references measured in the same run
bench: venv
	$(PY) benchmarks/run_all.py

## fuzz: a million corrupted and random inputs through the frame decoder and message parser
fuzz: venv
	$(PY) benchmarks/fuzz_decoder.py --inputs 1000000

## lint: ruff (lint + format check), mypy and the import layering (import-linter); CI runs it
## mypy checks the installed names (sensorimotor.*): a symlink tree maps them onto the top-level folders
TYPECHECK := build/typecheck
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/sensorimotor
	for p in cli configs control hardware perception sim; do ln -s ../../../$$p $(TYPECHECK)/sensorimotor/$$p; done
	cd $(TYPECHECK) && MYPYPATH=. ../../$(BIN)/mypy --config-file ../../pyproject.toml --explicit-package-bases -p sensorimotor
	$(BIN)/lint-imports

## docs: regenerate docs/configs.md from the typed config
docs: venv
	$(PY) -m sensorimotor.control.config_docs > docs/configs.md
	$(PY) -m sensorimotor.perception.model_card > docs/model-card.md

clean:
	rm -rf $(VENV) runs .pytest_cache build
