#!/bin/sh
# The main job, as far as it goes today: a simulated host built from a real
# machine's lspci dump, and qemu-dm placing its multi-function devices.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$top/build}
hosts=$top/tests/data/hosts
work=$B/demo
rm -rf "$work"
mkdir -p "$work"

say() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

dump=asus-p6t6-x58-ich10-gt218
say "A simulated host from a real ASUS P6T6 (X58 + ICH10R) dump, every function assignable"
run "$B/simhost" "$hosts/$dump.lspci" "$work/host" --sizes "$hosts/$dump.sizes" --all-assignable

say "What real lspci reads from it: the ICH10 USB controllers and the GeForce 210 with its HDMI audio"
lspci -A linux-sysfs -O sysfs.path="$work/host" -s 00:1d
lspci -A linux-sysfs -O sysfs.path="$work/host" -s 06:00

say "Identity mapping: USB 00:1d.0-2 into guest slot 7"
run "$B/qemu-dm" -host-sysfs "$work/host" -pci 0000:00:1d.0-2@7 -dry-run

say "Least mapping, functions in reversed order (the proposal's erratum: 1d.0 lands on 07.2)"
run "$B/qemu-dm" -host-sysfs "$work/host" -pci '0000:00:1d.7,1,0@7,map=least' -dry-run

say "Every function of both USB controllers and the GPU + HDMI audio, automatic slots"
run "$B/qemu-dm" -host-sysfs "$work/host" -pci '00:1a.*' -pci '00:1d.*' -pci 06:00.0-1 -dry-run

say "The X58 uncore: non-contiguous functions 0,1,4 keep their holes with identity"
run "$B/qemu-dm" -host-sysfs "$work/host" -pci 'ff:03.*' -dry-run

say "qemu-dm running the USB controller from boot, with the sim hypervisor and a monitor"
printf '%s\n' 'pci_add 06:00.1,0@8,map=least' 'info pci' 'pci_add 0000:00:1d.0-9' \
    'pci_del 08' 'info pci' 'quit' |
  "$B/qemu-dm" -host-sysfs "$work/host" -hypervisor sim -monitor stdio -pci '00:1d.*@7' 2>/dev/null
echo

say "A mistake is refused with the offending text and column, and nothing is placed"
run "$B/qemu-dm" -host-sysfs "$work/host" -pci 0000:00:1d.0-2@7 -pci 0000:00:1d.0-9 -dry-run || true
