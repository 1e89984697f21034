/*
 * The ACPI PCI hot-plug controller of qemu-xen-traditional, as hvmloader's
 * DSDT drives it (guest I/O ports):
 *
 *   0x10c0             PSTA  the pending event: 0 insert, 3 remove
 *   0x10c1             PSTB  the devfn it is about (function 0 of the slot)
 *   0x10c2 + devfn/2   one nibble per devfn (even devfn: low nibble, odd:
 *                      high), 0xF = present; the guest's _STA reads it.
 *                      Eject (_EJ0): the guest writes 0x01 (even devfn) or
 *                      0x10 (odd devfn) to the byte.
 *
 * An event is delivered by raising the SCI (GPE0 bit 3, _L03).  A slot is
 * reported once, after its function 0 is plugged; an eject of any present
 * function powers off the whole slot.
 */
#ifndef HW_PHP_H
#define HW_PHP_H

#include <stdbool.h>
#include <stdint.h>

#include "pci.h"

#define PHP_IOPORT_PSTA  0x10c0
#define PHP_IOPORT_PSTB  0x10c1
#define PHP_IOPORT_SLOTS 0x10c2
#define PHP_SLOT_BYTES   (PCI_BUS_DEVFNS / 2)
#define PHP_IOPORT_END   (PHP_IOPORT_SLOTS + PHP_SLOT_BYTES)     /* exclusive */

#define PHP_EVENT_INSERT 0
#define PHP_EVENT_REMOVE 3

#define PHP_STA_PRESENT  0xf
#define PHP_EJECT_EVEN   0x01
#define PHP_EJECT_ODD    0x10

typedef struct Php Php;

typedef struct PhpOps {
    /* Raise the SCI: an event is pending in PSTA/PSTB. */
    void (*sci)(void *opaque);
    /* The guest ejected guest slot vslot: detach every function of it. */
    void (*eject)(void *opaque, unsigned vslot);
} PhpOps;

/* Slots already populated on bus are present from the start (no event). */
Php *php_new(PciBus *bus, const PhpOps *ops, void *opaque);
void php_free(Php *php);

static inline bool php_claims_ioport(uint16_t port)
{
    return port >= PHP_IOPORT_PSTA && port < PHP_IOPORT_END;
}
/* Guest accesses of 1, 2 or 4 bytes; bytes outside the block read 0xff. */
uint32_t php_ioport_read(Php *php, uint16_t port, unsigned len);
void php_ioport_write(Php *php, uint16_t port, uint32_t val, unsigned len);

/* The device model's side: a slot's function 0 was plugged (its functions
 * become present, one insert event); a slot was removed (not present). */
void php_slot_inserted(Php *php, unsigned vslot);
void php_slot_removed(Php *php, unsigned vslot);
/* Ask the guest to eject a slot: -ENOENT when the guest cannot see it. */
int php_request_eject(Php *php, unsigned vslot);

/* Events raised since creation. */
unsigned long php_events(const Php *php);

#endif
