#!/bin/sh
# Boots Debian's kernel (cache/guest, scripts/guest-image) under QEMU with
# QEMU's emulated VT-d (so the kernel forms real IOMMU groups), the ICH9
# USB set at 00:1d (UHCI x3 + EHCI) and a virtio device with FLR behind a
# PCIe root port; its init (tests/lib/host-assign-init) runs
# build/xm and build/qemu-dm against the kernel's real /sys/bus/pci.  The
# guest's console goes to stdout.  The initramfs is the usual one plus a
# second archive: xm, qemu-dm, their libraries, and the kernel modules.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$src/build}
guest=${GUEST_IMAGE:-$src/cache/guest}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

root=$work/root
mkdir -p "$root/mods" "$root/xm/lib" "$root/lib64" "$root/tmp"
deb=$(ls "$guest"/debs/linux-image-*.deb | head -n 1)
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards \
    './lib/modules/*/kernel/drivers/pci/pci-stub.ko' \
    './lib/modules/*/kernel/drivers/usb/common/usb-common.ko' \
    './lib/modules/*/kernel/drivers/usb/core/usbcore.ko' \
    './lib/modules/*/kernel/drivers/usb/host/ehci-hcd.ko' \
    './lib/modules/*/kernel/drivers/usb/host/ehci-pci.ko' \
    './lib/modules/*/kernel/drivers/usb/host/uhci-hcd.ko'
find "$work/lib" -name '*.ko' -exec cp {} "$root/mods/" \;
cp "$build/xm" "$build/qemu-dm" "$root/xm/"
for lib in $(ldd "$build/xm" "$build/qemu-dm" | awk '$3 ~ /^\// { print $3 }' | sort -u); do
    cp -L "$lib" "$root/xm/lib/"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
cp "$src/tests/lib/host-assign-init" "$root/hl-init"
chmod 755 "$root/hl-init"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -1 > "$work/extra.gz"
cat "$guest/initrd.gz" "$work/extra.gz" > "$work/initrd.gz"

exec timeout 300 qemu-system-x86_64 -M q35 -m 512 -nographic -no-reboot -net none \
    -device intel-iommu,intremap=off \
    -kernel "$guest/vmlinuz" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 rdinit=/hl-init quiet intel_iommu=on" \
    -device ich9-usb-uhci1,addr=1d.0,multifunction=on -device ich9-usb-uhci2,addr=1d.1 \
    -device ich9-usb-uhci3,addr=1d.2 -device ich9-usb-ehci1,addr=1d.7 \
    -device pcie-root-port,id=rp1,chassis=1,addr=4.0 \
    -device virtio-rng-pci,bus=rp1,disable-legacy=on </dev/null
