/*
 * Hot-plug through a QEMU's ACPI PCI hot-plug.  See qemu-hotplug.h.
 */
#include "qemu-hotplug.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "dm-log.h"

#define EJECT_TIMEOUT_S 30      /* the guest's ACPI eject after device_del */

typedef enum SlotState { SLOT_EMPTY, SLOT_PLUGGING, SLOT_IN, SLOT_REMOVING } SlotState;

typedef struct HpSlot {
    SlotState state;
    int nfuncs;
    guint eject_timer;
    QemuHotplugEjectFn eject_done;  /* who asked for the eject, if anyone */
    void *eject_opaque;
} HpSlot;

struct QemuHotplug {
    char *who;
    PtGuest *guest;
    QemuHotplugOps ops;
    void *opaque;
    Qmp *qmp;
    HpSlot slots[PT_SLOTS];
};

/* QMP command tags: the slot, and whether it ends the slot's plug. */
#define TAG(slot, last) ((slot) | ((last) ? 0x100u : 0))
#define TAG_SLOT(tag)   ((tag) & 0xffu)
#define TAG_LAST(tag)   (((tag) & 0x100u) != 0)

void qemu_hotplug_dev_id(char *buf, size_t len, uint8_t devfn)
{
    snprintf(buf, len, "pt%02x_%x", PT_SLOT(devfn), PT_FUNC(devfn));
}

/* The devfn of a device id qemu_hotplug_dev_id made ("pt07_0"), or -1. */
static int dev_id_devfn(const char *id)
{
    char slot[3] = { 0 };
    unsigned long s, f;

    if (strlen(id) != 6 || strncmp(id, "pt", 2) || id[4] != '_')
        return -1;
    memcpy(slot, id + 2, 2);
    if (pt_parse_uint(slot, 16, PT_SLOTS - 1, &s) < 0 ||
        pt_parse_uint(id + 5, 16, PT_FUNCS_PER_SLOT - 1, &f) < 0)
        return -1;
    return PT_DEVFN(s, f);
}

int qemu_hotplug_slot_devfns(PtGuest *guest, unsigned slot, uint8_t out[PT_FUNCS_PER_SLOT])
{
    int n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < pt_guest_count(guest); i++) {
            uint8_t d = pt_guest_func_at(guest, i)->vdevfn;
            if (PT_SLOT(d) == slot && (PT_FUNC(d) == 0) == (pass == 1))
                out[n++] = d;
        }
    return n;
}

static void released(QemuHotplug *hp, unsigned slot, const char *how)
{
    HpSlot *s = &hp->slots[slot];
    g_clear_handle_id(&s->eject_timer, g_source_remove);
    s->state = SLOT_EMPTY;
    if (hp->ops.released)
        hp->ops.released(hp->opaque, slot, how);
}

/* Tell whoever asked for the eject of slot, once. */
static void eject_answer(QemuHotplug *hp, unsigned slot, const char *failure)
{
    HpSlot *s = &hp->slots[slot];
    QemuHotplugEjectFn done = s->eject_done;

    s->eject_done = NULL;
    if (done)
        done(s->eject_opaque, slot, failure);
}

/* ------------------------------------------------------------ plug */

/*
 * A refused plug: the rest of the slot's commands are dropped.  Nothing
 * stays half-attached: the guest never got the slot, so qemu-dm lets go of
 * it too (mappings, assignment).
 */
static void plug_done(void *opaque, unsigned tag, const char *what, const char *error)
{
    QemuHotplug *hp = opaque;
    unsigned slot = TAG_SLOT(tag);
    HpSlot *s = &hp->slots[slot];

    if (error) {
        PtError err;
        qmp_drop(hp->qmp, plug_done, TAG(slot, false));
        qmp_drop(hp->qmp, plug_done, TAG(slot, true));
        released(hp, slot, NULL);
        pt_guest_detach_slot(hp->guest, slot, &err);
        dm_log(hp->who, "QEMU refused %s: %s; slot %02x detached again", what, error, slot);
        return;
    }
    if (TAG_LAST(tag) && s->state == SLOT_PLUGGING) {
        s->state = SLOT_IN;
        dm_log(hp->who, "slot %02x: %d function%s plugged into the guest", slot, s->nfuncs,
               s->nfuncs == 1 ? "" : "s");
    }
}

void qemu_hotplug_add(QemuHotplug *hp, unsigned slot, uint8_t devfn, const char *opts, int fd,
                      bool last)
{
    char id[16];

    qemu_hotplug_dev_id(id, sizeof(id), devfn);
    if (fd >= 0)
        qmp_call(hp->qmp, g_strdup_printf("{\"execute\": \"getfd\", \"arguments\": "
                                          "{\"fdname\": \"%s\"}}", id),
                 g_strdup_printf("getfd %s", id), fd, plug_done, hp, TAG(slot, false));
    qmp_call(hp->qmp, qmp_device_add_json(opts), g_strdup_printf("device_add %s", id), -1,
             plug_done, hp, TAG(slot, last));
}

static void slot_insert(QemuHotplug *hp, unsigned slot)
{
    uint8_t devfns[PT_FUNCS_PER_SLOT];
    HpSlot *s = &hp->slots[slot];
    char why[256];

    s->state = SLOT_PLUGGING;
    s->nfuncs = qemu_hotplug_slot_devfns(hp->guest, slot, devfns);
    if (hp->ops.plug(hp->opaque, hp, slot, why, sizeof(why)) < 0) {
        dm_log(hp->who, "slot %02x: %s", slot, why);
        s->state = SLOT_EMPTY;
    }
}

void qemu_hotplug_slot_in(QemuHotplug *hp, unsigned slot, int nfuncs)
{
    hp->slots[slot] = (HpSlot){ .state = SLOT_IN, .nfuncs = nfuncs };
}

void qemu_hotplug_plug_present(QemuHotplug *hp)
{
    uint8_t devfns[PT_FUNCS_PER_SLOT];

    for (unsigned slot = 0; slot < PT_SLOTS; slot++) {
        int n = qemu_hotplug_slot_devfns(hp->guest, slot, devfns);
        if (n > 0 && PT_FUNC(devfns[n - 1]) == 0 && hp->slots[slot].state == SLOT_EMPTY)
            slot_insert(hp, slot);
    }
}

/* ------------------------------------------------------------ unplug */

/* An asked-for eject that did not happen: the device is still in QEMU and
 * the guest, so the slot stays in. */
static void eject_refused(QemuHotplug *hp, unsigned slot, const char *why)
{
    HpSlot *s = &hp->slots[slot];

    g_clear_handle_id(&s->eject_timer, g_source_remove);
    s->state = SLOT_IN;
    dm_log(hp->who, "slot %02x: not ejected (%s); it stays in the guest", slot, why);
    eject_answer(hp, slot, why);
}

typedef struct EjectWait {
    QemuHotplug *hp;
    unsigned slot;
} EjectWait;

static gboolean eject_timeout(gpointer opaque)
{
    EjectWait *w = opaque;
    HpSlot *s = &w->hp->slots[w->slot];
    const char *why = "the guest did not eject it within " G_STRINGIFY(EJECT_TIMEOUT_S) " s";

    s->eject_timer = 0;
    if (s->eject_done)
        eject_refused(w->hp, w->slot, why);
    else
        released(w->hp, w->slot, why);
    return G_SOURCE_REMOVE;
}

static void unplug_done(void *opaque, unsigned tag, const char *what, const char *error)
{
    QemuHotplug *hp = opaque;
    unsigned slot = TAG_SLOT(tag);

    if (!error)
        return;         /* DEVICE_DELETED follows once the guest ejected */
    dm_log(hp->who, "QEMU refused %s: %s", what, error);
    if (hp->slots[slot].state != SLOT_REMOVING)
        return;
    if (hp->slots[slot].eject_done) {
        g_autofree char *why = g_strdup_printf("QEMU refused %s: %s", what, error);
        eject_refused(hp, slot, why);
    } else {
        released(hp, slot, "not removed by QEMU");
    }
}

/* device_del of function 0; DEVICE_DELETED or the timer ends the wait. */
static void start_unplug(QemuHotplug *hp, unsigned slot)
{
    HpSlot *s = &hp->slots[slot];
    char id[16];

    qemu_hotplug_dev_id(id, sizeof(id), PT_DEVFN(slot, 0));
    s->state = SLOT_REMOVING;
    if (hp->ops.unplugging)
        hp->ops.unplugging(hp->opaque, slot);
    EjectWait *w = g_new(EjectWait, 1);
    *w = (EjectWait){ hp, slot };
    s->eject_timer = g_timeout_add_seconds_full(G_PRIORITY_DEFAULT, EJECT_TIMEOUT_S,
                                                eject_timeout, w, g_free);
    qmp_call(hp->qmp, g_strdup_printf("{\"execute\": \"device_del\", \"arguments\": "
                                      "{\"id\": \"%s\"}}", id),
             g_strdup_printf("device_del %s", id), -1, unplug_done, hp, TAG(slot, false));
}

static void slot_remove(QemuHotplug *hp, unsigned slot)
{
    HpSlot *s = &hp->slots[slot];

    if (s->state == SLOT_EMPTY) {
        released(hp, slot, NULL);       /* whatever is left of a plug */
        return;
    }
    if (s->state == SLOT_REMOVING) {
        /* Detached while an asked-for eject is under way: that device_del
         * completes the removal; nobody waits for the answer any more. */
        s->eject_done = NULL;
        return;
    }
    start_unplug(hp, slot);
}

int qemu_hotplug_request_eject(QemuHotplug *hp, unsigned vslot, QemuHotplugEjectFn done,
                               void *opaque)
{
    if (vslot >= PT_SLOTS)
        return -EINVAL;
    HpSlot *s = &hp->slots[vslot];
    if (!qmp_is_open(hp->qmp))
        return -ENOTCONN;
    if (s->state == SLOT_REMOVING)
        return -EBUSY;
    if (s->state == SLOT_EMPTY)
        return -ENOENT;
    s->eject_done = done;
    s->eject_opaque = opaque;
    start_unplug(hp, vslot);
    return 0;
}

void qemu_hotplug_slot_changed(void *opaque, unsigned vslot, bool inserted)
{
    QemuHotplug *hp = opaque;

    if (vslot >= PT_SLOTS)
        return;
    if (!qmp_is_open(hp->qmp)) {
        dm_log(hp->who, "slot %02x %s while QEMU is not running: no guest sees it", vslot,
               inserted ? "inserted" : "removed");
        if (!inserted)
            released(hp, vslot, NULL);
        return;
    }
    if (inserted)
        slot_insert(hp, vslot);
    else
        slot_remove(hp, vslot);
}

void qemu_hotplug_event(QemuHotplug *hp, const char *event, const char *line)
{
    g_autofree char *device = qmp_json_pick(line, "device");
    int devfn = device ? dev_id_devfn(device) : -1;

    /* Function 0's deletion is the slot's. */
    if (strcmp(event, "DEVICE_DELETED") || devfn < 0 || PT_FUNC(devfn) != 0)
        return;
    unsigned slot = PT_SLOT(devfn);
    if (hp->slots[slot].state == SLOT_REMOVING) {
        released(hp, slot, "removed from the guest");
        eject_answer(hp, slot, NULL);
    } else if (hp->slots[slot].state == SLOT_IN) {
        /* The guest ejected it unasked, or after the wait for it ended:
         * the device is gone from QEMU, so qemu-dm lets go of it too. */
        PtError err;
        released(hp, slot, "ejected by the guest");
        pt_guest_detach_slot(hp->guest, slot, &err);
    }
}

void qemu_hotplug_gone(QemuHotplug *hp)
{
    for (unsigned s = 0; s < PT_SLOTS; s++) {
        released(hp, s, NULL);
        eject_answer(hp, s, "QEMU is gone");
    }
}

QemuHotplug *qemu_hotplug_new(const char *who, PtGuest *guest, const QemuHotplugOps *ops,
                              void *opaque)
{
    QemuHotplug *hp = g_new0(QemuHotplug, 1);

    hp->who = g_strdup(who);
    hp->guest = guest;
    hp->ops = *ops;
    hp->opaque = opaque;
    return hp;
}

void qemu_hotplug_set_qmp(QemuHotplug *hp, Qmp *qmp)
{
    hp->qmp = qmp;
}

void qemu_hotplug_free(QemuHotplug *hp)
{
    if (!hp)
        return;
    for (unsigned s = 0; s < PT_SLOTS; s++)
        g_clear_handle_id(&hp->slots[s].eject_timer, g_source_remove);
    g_free(hp->who);
    g_free(hp);
}
