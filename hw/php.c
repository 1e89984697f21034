#include "php.h"

#include <errno.h>
#include <glib.h>
#include <stdlib.h>

#include "dm-log.h"
#include "pt-place.h"

struct Php {
    PciBus *bus;
    const PhpOps *ops;
    void *opaque;
    uint8_t psta, pstb;
    uint8_t status[PHP_SLOT_BYTES];
    unsigned long events;
};

/* ---- the nibbles: even devfn low, odd devfn high ---- */

static unsigned nibble_shift(uint8_t devfn)
{
    return (devfn & 1) ? 4 : 0;
}

static uint8_t nibble_get(const Php *php, uint8_t devfn)
{
    return (php->status[devfn / 2] >> nibble_shift(devfn)) & 0xf;
}

static void nibble_set(Php *php, uint8_t devfn, uint8_t v)
{
    unsigned sh = nibble_shift(devfn);

    php->status[devfn / 2] = (uint8_t)((php->status[devfn / 2] & ~(0xf << sh)) | (v << sh));
}

static void mark_slot(Php *php, unsigned vslot, uint8_t funcs)
{
    for (unsigned f = 0; f < PT_FUNCS_PER_SLOT; f++)
        nibble_set(php, PT_DEVFN(vslot, f), (funcs >> f) & 1 ? PHP_STA_PRESENT : 0);
}

Php *php_new(PciBus *bus, const PhpOps *ops, void *opaque)
{
    Php *php = g_new0(Php, 1);

    php->bus = bus;
    php->ops = ops;
    php->opaque = opaque;
    /* Devices there before the guest boots are found by enumeration. */
    for (unsigned s = 0; s < PT_SLOTS; s++) {
        uint8_t funcs = pci_bus_slot_funcs(bus, s);
        if (funcs & 1)
            mark_slot(php, s, funcs);
    }
    return php;
}

void php_free(Php *php)
{
    g_free(php);
}

unsigned long php_events(const Php *php)
{
    return php->events;
}

static void raise_event(Php *php, int event, unsigned vslot)
{
    php->psta = (uint8_t)event;
    php->pstb = PT_DEVFN(vslot, 0);
    php->events++;
    if (php->ops && php->ops->sci)
        php->ops->sci(php->opaque);
}

/* ---- the device model's side ---- */

void php_slot_inserted(Php *php, unsigned vslot)
{
    uint8_t funcs = pci_bus_slot_funcs(php->bus, vslot);

    if (vslot >= PT_SLOTS || !(funcs & 1))
        return;
    mark_slot(php, vslot, funcs);
    dm_log("php", "slot %02x inserted (functions 0x%02x): event %d", vslot, funcs,
           PHP_EVENT_INSERT);
    raise_event(php, PHP_EVENT_INSERT, vslot);
}

void php_slot_removed(Php *php, unsigned vslot)
{
    if (vslot < PT_SLOTS)
        mark_slot(php, vslot, 0);
}

int php_request_eject(Php *php, unsigned vslot)
{
    if (vslot >= PT_SLOTS || nibble_get(php, PT_DEVFN(vslot, 0)) != PHP_STA_PRESENT)
        return -ENOENT;
    dm_log("php", "slot %02x: asking the guest to eject (event %d)", vslot, PHP_EVENT_REMOVE);
    raise_event(php, PHP_EVENT_REMOVE, vslot);
    return 0;
}

/* ---- guest port accesses ---- */

static uint8_t read_byte(const Php *php, uint16_t port)
{
    if (port == PHP_IOPORT_PSTA)
        return php->psta;
    if (port == PHP_IOPORT_PSTB)
        return php->pstb;
    if (port >= PHP_IOPORT_SLOTS && port < PHP_IOPORT_END)
        return php->status[port - PHP_IOPORT_SLOTS];
    return 0xff;
}

uint32_t php_ioport_read(Php *php, uint16_t port, unsigned len)
{
    uint32_t v = 0;

    if (len != 1 && len != 2 && len != 4)
        return 0xffffffffu;
    for (unsigned i = 0; i < len; i++)
        v |= (uint32_t)read_byte(php, (uint16_t)(port + i)) << (8 * i);
    return v;
}

/* An eject of a present function powers off the whole slot: functions
 * cannot stay without their function 0. */
static void eject(Php *php, uint8_t devfn)
{
    unsigned vslot = PT_SLOT(devfn);

    if (nibble_get(php, devfn) != PHP_STA_PRESENT) {
        dm_log("php", "eject of %02x.%x ignored: not present", vslot, PT_FUNC(devfn));
        return;
    }
    dm_log("php", "slot %02x ejected by the guest (through %02x.%x)", vslot, vslot,
           PT_FUNC(devfn));
    mark_slot(php, vslot, 0);
    if (php->ops && php->ops->eject)
        php->ops->eject(php->opaque, vslot);
}

static void write_byte(Php *php, uint16_t port, uint8_t val)
{
    if (port < PHP_IOPORT_SLOTS || port >= PHP_IOPORT_END)
        return;     /* PSTA/PSTB are read-only */
    uint8_t pair = (uint8_t)((port - PHP_IOPORT_SLOTS) * 2);
    if (val & PHP_EJECT_EVEN)
        eject(php, pair);
    if (val & PHP_EJECT_ODD)
        eject(php, (uint8_t)(pair + 1));
}

void php_ioport_write(Php *php, uint16_t port, uint32_t val, unsigned len)
{
    if (len != 1 && len != 2 && len != 4)
        return;
    for (unsigned i = 0; i < len; i++)
        write_byte(php, (uint16_t)(port + i), (uint8_t)(val >> (8 * i)));
}
