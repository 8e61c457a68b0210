# imsd — plain Makefile.
#
#   make            build ./build/imsd (optimised, -Werror)
#   make run        install missing build deps, build, serve on the embedded default
#   make test       install deps, build with ASan+UBSan (and the optimised binary, whose memory
#                   the limit tests measure), run unit, integration and short fuzz runs
#   make asan       build the sanitizer variant into build/asan/
#   make fuzz       build libFuzzer targets and run each for FUZZ_SECONDS (default 30), merging
#                   what they find into tests/fuzz/corpus/NAME
#   make bench      performance comparison against Postfix (not part of make test)
#   make soak       SOAK_CYCLES (100) kill -9 cycles under relay load; nothing acknowledged lost
#   make deb        the Debian package build/imsd_VERSION_amd64.deb (dpkg-buildpackage, debhelper)
#   make layers     check that no module includes one above it (scripts/layers.py; part of make test)
#
# Sources live in src/<module>/; every .c except src/cli/main.c goes into a static library
# that the binary, the unit tests and the fuzz targets link.

CC      ?= cc
CSTD    := -std=gnu11
WARN    := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2 -Wno-unused-parameter
# Bounded snprintf truncation is deliberate throughout (log lines, diagnostics); gcc's
# heuristic warning about it is noise. clang does not know the flag, hence the probe.
WARN    += $(shell $(CC) -Werror -Wno-format-truncation -E -x c /dev/null >/dev/null 2>&1 && \
           echo -Wno-format-truncation)
CPPFLAGS := -Isrc -D_GNU_SOURCE
LIBS    := -lssl -lcrypto -lcares -lcrypt -lpthread -lspf2 -lopendkim -lopendmarc -lpsl -lidn2 -lunistring -lsystemd

OPT     ?= -O2 -g
B       ?= build

LIBSRC  := $(filter-out src/cli/main.c,$(sort $(wildcard src/*/*.c)))
MAINSRC := src/cli/main.c
UNITSRC := $(sort $(wildcard tests/unit/*_test.c))
FUZZSRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

LIBOBJ  := $(LIBSRC:%.c=$(B)/%.o)
MAINOBJ := $(MAINSRC:%.c=$(B)/%.o)
UNITBIN := $(UNITSRC:tests/unit/%.c=$(B)/tests/%)

FUZZ_SECONDS ?= 30

.PHONY: all run test asan fuzz fuzz-build bench soak clean deps deps-build unit integration deb layers

all: $(B)/imsd

deps:
	@scripts/deps.sh test

deps-build:
	@scripts/deps.sh build

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(CSTD) $(OPT) $(WARN) $(CPPFLAGS) $(EXTRA_CFLAGS) -MMD -MP -c $< -o $@

$(B)/libimsd.a: $(LIBOBJ)
	@rm -f $@
	@ar rcs $@ $^

$(B)/imsd: $(MAINOBJ) $(B)/libimsd.a
	@echo "  LINK    $@"
	@$(CC) $(OPT) $(EXTRA_CFLAGS) -o $@ $(MAINOBJ) $(B)/libimsd.a $(LIBS) $(EXTRA_LDFLAGS)

$(B)/tests/%: tests/unit/%.c tests/unit/t.h $(B)/libimsd.a
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(CSTD) $(OPT) $(WARN) -Wno-missing-prototypes $(CPPFLAGS) -Itests/unit $(EXTRA_CFLAGS) -o $@ $< $(B)/libimsd.a $(LIBS) $(EXTRA_LDFLAGS)

unit-build: $(UNITBIN)

run: deps-build all
	./build/imsd run

# The sanitizer build: everything the tests run is built with ASan+UBSan.
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan:
	@$(MAKE) --no-print-directory B=build/asan OPT="-O1 -g" EXTRA_CFLAGS="$(ASAN_FLAGS)" \
		EXTRA_LDFLAGS="$(ASAN_FLAGS)" build/asan/imsd unit-build

# The allowed-includes table (scripts/layers.py): an include that runs back up fails the build
# of the tests before anything runs (tests/integration/test_layers.py checks it fails).
layers:
	@python3 scripts/layers.py src

test: deps layers asan
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory fuzz-build
	@python3 tests/run.py --build build/asan --fuzz-build build/fuzz --fuzz-seconds 10

# libFuzzer targets: clang only.
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
fuzz-build:
	@$(MAKE) --no-print-directory B=build/fuzz CC=clang OPT="-O1 -g" EXTRA_CFLAGS="$(FUZZ_FLAGS)" \
		build/fuzz/libimsd.a
	@mkdir -p build/fuzz/bin
	@set -e; for f in $(FUZZSRC); do n=$$(basename $$f .c); \
		if [ ! build/fuzz/bin/$$n -nt $$f ] || [ build/fuzz/libimsd.a -nt build/fuzz/bin/$$n ]; then \
		echo "  FUZZ    build/fuzz/bin/$$n"; \
		clang $(CSTD) -O1 -g $(CPPFLAGS) -fsanitize=fuzzer,address,undefined -o build/fuzz/bin/$$n $$f \
			build/fuzz/libimsd.a $(LIBS); fi; done

fuzz: deps fuzz-build
	@python3 tests/run.py --only fuzz --fuzz-build build/fuzz --fuzz-seconds $(FUZZ_SECONDS) \
		--keep-corpus

bench: deps all
	bench/run.sh

# 100 kill -9 cycles of a relaying imsd under load: acknowledged / delivered / duplicated /
# lost (must be 0). Not part of make test (a short version is: test_soak.py).
SOAK_CYCLES ?= 100
soak: deps-build all
	python3 tests/soak/soak.py --cycles $(SOAK_CYCLES)

# The Debian package (debian/): dpkg-buildpackage with debhelper builds the binary into
# build/deb with Debian's hardening flags and writes the .deb, .buildinfo and .changes into
# build/ (not into the directory above the source tree). lintian checks the result.
VERSION := $(shell sed -n 's/^\#define IMSD_VERSION "\(.*\)"/\1/p' src/util/version.h)
DEB     := build/imsd_$(VERSION)_amd64.deb
deb:
	@scripts/deps.sh deb
	@test "$$(dpkg-parsechangelog -S Version)" = "$(VERSION)" || { \
		echo "debian/changelog is at $$(dpkg-parsechangelog -S Version), imsd at $(VERSION):" \
		"add a changelog entry (dch -v $(VERSION))" >&2; exit 1; }
	@mkdir -p build
	DEB_BUILD_OPTIONS=noddebs dpkg-buildpackage -b -us -uc \
		--buildinfo-option=-ubuild --changes-option=-ubuild \
		--buildinfo-option=-Obuild/imsd_$(VERSION)_amd64.buildinfo \
		--changes-option=-Obuild/imsd_$(VERSION)_amd64.changes
	lintian --fail-on error build/imsd_$(VERSION)_amd64.changes
	@echo "built $(DEB)"

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
