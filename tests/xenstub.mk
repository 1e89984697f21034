# xenstub.so: the LD_PRELOAD stand-in for Xen under which the xen backend
# (hw/hypervisor-xen.c, guest/xen-ioreq.c) runs in tests.  Plain gcc, no
# sanitizers: it is preloaded into sanitized tests and into qemu-dm alike.
# Order-only for the test programs so it never lands on their link line.
XENSTUB_SO := $(B)/xenstub.so

$(XENSTUB_SO): tests/lib/xenstub.c tests/lib/xenstub.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -O2 -g -DXENSTUB_SO -Itests/lib -shared -fPIC -o $@ $<

$(TESTS): | $(XENSTUB_SO)
