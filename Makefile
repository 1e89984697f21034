# Top level: the targets a person types. Build rules live in Makefile.target.
.DEFAULT_GOAL := all
include Makefile.target

.PHONY: all check check-xen bench-xen demo demo-xen demo-placement bench fuzz valgrind clean install-deps

all: $(PROGRAMS)

# Every test (GTest programs with --tap, shell tests) through prove: the run
# ends with a count.
check: $(PROGRAMS) $(TESTS) $(FUZZERS)
	BUILD=$(B) prove --exec tests/tap-run $(TESTS) $(SHELL_TESTS)

# The real-Xen tier: Debian's Xen 4.17 and a dom0 nested under QEMU, xm and
# qemu-dm passing the outer machine's devices to a Linux HVM guest and
# hot-plugging a slot (tests/xen/run, scenario xm; about 10 minutes,
# downloads Debian packages into cache/xen the first time).
check-xen: $(PROGRAMS)
	B=$(B) XEN_SCENARIOS=xm tests/xen/run

# The main job on the real Xen: xm creates a guest with multi-function
# slots, hot-plugs a slot and unplugs it (tests/xen/demo, 5-20 minutes).
demo-xen: $(PROGRAMS)
	B=$(B) tests/xen/demo

# Our path and Xen's stock one (xl + QEMU's xen-pci-passthrough) on the same
# real Xen and devices, one guest after the other; prints the table from the
# run's artifacts (tests/xen/side-by-side-table), also when a check failed.
# The scenario's "# time-limit:" line (40 min) bounds the run; dom0's log is
# printed as it goes.  The outer e1000e pair has no option ROM here: with
# one, the stock guests' SeaBIOS runs iPXE through xen_pt, and those guests
# stalled at boot (README, "Side by side").
bench-xen: $(PROGRAMS)
	B=$(B) XEN_SCENARIOS=side-by-side XEN_TIER_PROGRESS=1 \
	  XEN_OUTER_E1000E_ROM=$${XEN_OUTER_E1000E_ROM:-0} tests/xen/run; rc=$$?; \
	  B=$(B) tests/xen/side-by-side-table || rc=1; exit $$rc

# The main job: a real Linux guest under QEMU sees multi-function slots.
demo: $(PROGRAMS)
	B=$(B) tests/demo-real-guest.sh

# Placement and the monitor on a simulated host, no guest kernel needed.
demo-placement: $(PROGRAMS)
	B=$(B) tests/demo-placement.sh

bench: $(BENCHES)
	@for b in $(BENCHES); do $$b || exit 1; done

# Longer fuzzing session than the bounded one inside `make check`.
fuzz: $(FUZZERS)
	BUILD=$(B) FUZZ_SECONDS=$${FUZZ_SECONDS:-300} tests/fuzz.sh

# The tests again, built without sanitizers, under valgrind (slow; not in check).
valgrind: $(PROGRAMS) $(VG_TESTS) $(B)/xenstub.so $(B)/fakexen.so
	@for t in $(VG_TESTS); do \
	  echo "== valgrind $$t"; \
	  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
	    $$t --tap > $$t.valgrind.log 2>&1 || { tail -40 $$t.valgrind.log; exit 1; }; \
	done; echo "valgrind: no errors in $(words $(VG_TESTS)) test programs"

install-deps:
	scripts/install-deps

clean:
	rm -rf $(B)
