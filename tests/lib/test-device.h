/*
 * A small emulated PCI function for bus tests: a 256-byte config array with
 * per-byte write masks, BARs described to the bus, and counters that show
 * which config bytes actually reached the device.  Not a pass-through.
 */
#ifndef TEST_DEVICE_H
#define TEST_DEVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include "pci.h"

typedef struct TestDevice TestDevice;

/* class_code: 24 bits, class << 16 | subclass << 8 | prog-if. */
TestDevice *test_device_new(uint16_t vendor, uint16_t device, uint32_t class_code);
void test_device_free(TestDevice *td);

void test_device_set_bar(TestDevice *td, int bar, PciBarKind kind, uint64_t size,
                         uint64_t host_addr, bool prefetch);
void test_device_set_pin(TestDevice *td, uint8_t pin);
/* What the device itself reports in PCI_HEADER_TYPE (the bus owns bit 7). */
void test_device_set_header_type(TestDevice *td, uint8_t type);
/* Map BARs through the device's own bar_map hook instead of the hypervisor;
 * each call is recorded as "map BARn 0x..." / "unmap BARn 0x...". */
void test_device_use_map_hook(TestDevice *td, bool on);
const GPtrArray *test_device_map_calls(TestDevice *td);

int test_device_plug(TestDevice *td, PciBus *bus, uint8_t devfn);
PciDevice *test_device_pci(TestDevice *td);

/* The device's own config bytes (what it would answer without the bus). */
uint8_t *test_device_config(TestDevice *td);
/* Device-level writes that covered byte `offset`. */
unsigned test_device_writes_at(TestDevice *td, unsigned offset);
unsigned test_device_resets(TestDevice *td);

#endif
