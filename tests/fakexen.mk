# fakexen.so: the LD_PRELOAD stand-in for the hypervisor under which the real
# xenstored runs in tests (tests/lib/xenstored.c).  Plain gcc, no sanitizers:
# it is loaded into Debian's xenstored, not into a test.  Order-only for the
# test programs so it never lands on their link line.
FAKEXEN_SO := $(B)/fakexen.so

$(FAKEXEN_SO): tests/lib/fakexen.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -O2 -g -DFAKEXEN_SO -shared -fPIC -o $@ $< -ldl

$(TESTS) $(BENCHES): | $(FAKEXEN_SO)
