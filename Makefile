# engineering_metrics: DORA delivery metrics and SLO error budgets in PostgreSQL.
#
# Everyday targets:
#   make              build the module and the install script
#   make install      install into the PostgreSQL that pg_config points at
#   make test         the README's test command: set-up, build, install, every test
#   make demo         the README's main job: a throwaway cluster with a report
#   make demo-stop    stop the demo cluster
#   make installcheck / prove_installcheck   the suites alone (as a non-root user)

EXTENSION = engineering_metrics
EXTVERSION = 0.2.0

MODULE_big = $(EXTENSION)
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
PGFILEDESC = "engineering_metrics - DORA and SLO metrics inside PostgreSQL"

# The current version's install script is assembled from the ordered parts in
# sql/$(EXTENSION)/.  Released install scripts (sql/$(EXTENSION)--0.1.0.sql)
# and upgrade scripts (sql/$(EXTENSION)--A--B.sql) are committed as they are
# and never edited (README, Development).
INSTALL_PARTS = $(sort $(wildcard sql/$(EXTENSION)/*.sql))
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))

# Regression inputs stay in sql/: PostgreSQL 15's pg_regress reads <inputdir>/sql and <inputdir>/expected, the top-level folders the design keeps.
# pg_regress runs them in the order given: setup (the shared helpers) first.
REGRESS_FILES = $(sort $(patsubst sql/%.sql,%,$(filter-out sql/$(EXTENSION)--%,$(wildcard sql/*.sql))))
REGRESS = setup $(filter-out setup,$(REGRESS_FILES))
REGRESS_OPTS = --inputdir=. --temp-instance=./tmp_check --temp-config=test/regress.conf \
	--load-extension=$(EXTENSION)

TAP_TESTS = 1
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -DEM_VERSION=\"$(EXTVERSION)\" -isystem $(shell $(PG_CONFIG) --includedir-server) \
	$(shell curl-config --cflags)
PG_CFLAGS = -std=c11 -Wall -Wextra -Werror
SHLIB_LINK = $(shell curl-config --libs)

EXTRA_CLEAN = sql/$(EXTENSION)--$(EXTVERSION).sql results regression.diffs \
	regression.out tmp_check log

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Makefile.global resets PROVE_FLAGS, so ours comes after it.
PROVE_FLAGS = -I ./test/perl

sql/$(EXTENSION)--$(EXTVERSION).sql: $(INSTALL_PARTS)
	cat $^ > $@

.PHONY: test demo demo-stop bench

test:
	test/run-tests

demo:
	test/demo/run

demo-stop:
	test/demo/stop

# Reliability (README "Reliability"): bounded fuzzing of the pure-C parsers,
# the regression suite with the server under Valgrind, and the load script.
#   make fuzz [FUZZ_SECONDS=60]
#   make valgrind-check [EM_REGRESS="roles fuzz"]
#   make load [LOAD_SECONDS=300]
FUZZ_SECONDS ?= 60
LOAD_SECONDS ?= 300
.PHONY: fuzz valgrind-check load

fuzz:
	test/fuzz/run $(FUZZ_SECONDS)

valgrind-check:
	test/valgrind/run

load:
	test/load/run $(LOAD_SECONDS)
