#!/bin/sh
# Prepares the real-Xen tier once, from Debian packages only, into DIR
# (default cache/xen under the source tree):
#
#   DIR/xen-4.17          Debian's hypervisor, unpacked to the ELF image that
#                         QEMU's multiboot loader boots
#   DIR/qemu-xen/         qemu-system-xen unpacked: the guests' own QEMU
#   DIR/modules/          the kernel modules dom0 and the guest load
#   DIR/dom0-initrd.gz    busybox initramfs that mounts dom0's root over 9p
#   DIR/guest-initrd.gz   the real guest's init (guest/initramfs/init), busybox
#                         and its driver modules
#   DIR/usb-disk.img      the disk behind the outer usb-storage device
#   DIR/guest-kallsyms    the guest kernel's symbols as it runs with nokaslr
#                         (Debian's System.map is a placeholder), for xenctx
#                         when a guest goes silent on the tier
#   DIR/guest-bench-initrd.gz  guest-initrd.gz with this tree's init and
#                         cfgread-bench (tests/xen/cfgread-bench.c) on top, for
#                         the side-by-side scenario
#
# The guest kernel (also dom0's kernel) comes from scripts/guest-image.
# Idempotent: downloads stay in DIR/debs; each output is rebuilt only when
# missing or older than what it is made from.
# Exit status: 0 ready, 3 a package could not be downloaded, 1 other.
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-$src/cache/xen}
mkdir -p "$dir/debs"
dir=$(cd "$dir" && pwd)
guest=$src/cache/guest

say() { echo "xen-prepare: $*" >&2; }

# Packages downloaded, never installed: the machine's boot set-up stays as it is.
fetch() {
    ls "$dir/debs/$1"_*.deb >/dev/null 2>&1 && return 0
    (cd "$dir/debs" && apt-get download -q "$1" >/dev/null 2>&1) || {
        say "cannot download $1"
        return 3
    }
}

deb() { ls "$dir/debs/$1"_*.deb | head -n 1; }

# Builds $1 from a command only when missing or older than the given inputs.
stale() {
    out=$1; shift
    [ -s "$out" ] || return 0
    [ -n "$(find "$@" -newer "$out" 2>/dev/null)" ]
}

hypervisor() {
    fetch xen-hypervisor-4.17-amd64 || return
    stale "$dir/xen-4.17" "$(deb xen-hypervisor-4.17-amd64)" || return 0
    rm -rf "$dir/xen-root"
    mkdir -p "$dir/xen-root"
    dpkg -x "$(deb xen-hypervisor-4.17-amd64)" "$dir/xen-root"
    zcat "$dir"/xen-root/boot/xen-4.17-amd64.gz > "$dir/xen-4.17.tmp"
    mv "$dir/xen-4.17.tmp" "$dir/xen-4.17"
}

# The unpacked QEMU looks for its data (keymaps, firmware) next to itself.
guest_qemu() {
    fetch qemu-system-xen || return
    [ -x "$dir/qemu-xen/usr/libexec/xen-qemu-system-i386" ] && return 0
    rm -rf "$dir/qemu-xen"
    mkdir -p "$dir/qemu-xen"
    dpkg -x "$(deb qemu-system-xen)" "$dir/qemu-xen"
    ln -sfn /usr/share/qemu "$dir/qemu-xen/usr/share/qemu"
    ln -sfn /usr/share/seabios "$dir/qemu-xen/usr/share/seabios"
}

# Module name -> path under the kernel tree; dependencies come first.
DOM0_MODULES="
drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev
drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci net/9p/9pnet
net/9p/9pnet_virtio fs/netfs/netfs fs/fscache/fscache fs/9p/9p
drivers/xen/xen-privcmd drivers/xen/xenfs/xenfs drivers/xen/xen-evtchn
drivers/xen/xen-gntdev drivers/xen/xen-gntalloc drivers/xen/xen-pciback/xen-pciback"
GUEST_MODULES="
drivers/usb/common/usb-common drivers/usb/core/usbcore drivers/usb/host/ehci-hcd
drivers/usb/host/ehci-pci drivers/usb/host/uhci-hcd drivers/usb/host/xhci-hcd
drivers/usb/host/xhci-pci drivers/net/ethernet/intel/e1000e/e1000e"

# The stamp holds the module list: a changed list extracts them again.
modules() {
    kdeb=$(ls "$guest"/debs/linux-image-*.deb | head -n 1)
    want=$(echo $DOM0_MODULES $GUEST_MODULES)
    [ "$(cat "$dir/modules/.done" 2>/dev/null)" = "$want" ] && ! stale "$dir/modules/.done" "$kdeb" &&
        return 0
    rm -rf "$dir/modules" "$dir/kernel-root"
    mkdir -p "$dir/modules" "$dir/kernel-root"
    pats=
    for m in $DOM0_MODULES $GUEST_MODULES; do pats="$pats ./lib/modules/*/kernel/$m.ko"; done
    # shellcheck disable=SC2086
    dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$dir/kernel-root" --wildcards $pats
    find "$dir/kernel-root" -name '*.ko' -exec mv {} "$dir/modules/" \;
    rm -rf "$dir/kernel-root"
    echo "$want" > "$dir/modules/.done"
}

# Our own copy: cache/guest is shared and rebuilt by scripts/guest-image.
busybox() {
    fetch busybox-static || return
    [ -x "$dir/busybox-root/bin/busybox" ] && return 0
    rm -rf "$dir/busybox-root"
    mkdir -p "$dir/busybox-root"
    dpkg -x "$(deb busybox-static)" "$dir/busybox-root"
}

names() { for m in "$@"; do basename "$m"; done | tr '\n' ' '; }

dom0_initrd() {
    init=$src/tests/xen/dom0-initramfs-init
    stale "$dir/dom0-initrd.gz" "$init" "$dir/modules/.done" || return 0
    root=$dir/dom0-initramfs
    rm -rf "$root"
    mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/mods" "$root/newroot"
    cp "$dir/busybox-root/bin/busybox" "$root/bin/busybox"
    for m in $DOM0_MODULES; do cp "$dir/modules/$(basename "$m").ko" "$root/mods/"; done
    # shellcheck disable=SC2086
    echo "$(names $DOM0_MODULES)" > "$root/mods/order"
    cp "$init" "$root/init"
    chmod 755 "$root/init" "$root/bin/busybox"
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -1 > "$dir/dom0-initrd.gz.tmp"
    mv "$dir/dom0-initrd.gz.tmp" "$dir/dom0-initrd.gz"
}

# The guest's init (guest/initramfs/init) with the driver modules, built
# here rather than taken from cache/guest/initrd.gz, which other trees share.
# cache/xen is shared by trees: one whose list lacks a module may have
# rebuilt it since.
initrd_lacks_modules() {
    have=$(gzip -dc "$1" 2>/dev/null | cpio -t --quiet 2>/dev/null)
    for m in $GUEST_MODULES; do
        echo "$have" | grep -qx "modules/$(basename "$m").ko" || return 0
    done
    return 1
}

guest_initrd() {
    init=$src/guest/initramfs/init
    stale "$dir/guest-initrd.gz" "$init" "$dir/modules/.done" ||
        initrd_lacks_modules "$dir/guest-initrd.gz" || return 0
    root=$dir/guest-initramfs
    rm -rf "$root"
    mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/modules"
    cp "$dir/busybox-root/bin/busybox" "$root/bin/busybox"
    ln -s busybox "$root/bin/sh"
    for m in $GUEST_MODULES; do cp "$dir/modules/$(basename "$m").ko" "$root/modules/"; done
    cp "$init" "$root/init"
    chmod 755 "$root/init" "$root/bin/busybox"
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -1 > "$dir/guest-initrd.gz.tmp"
    mv "$dir/guest-initrd.gz.tmp" "$dir/guest-initrd.gz"
}

# The config-read benchmark, static: the guest's initramfs has no C library.
bench_program() {
    c=$src/tests/xen/cfgread-bench.c
    stale "$dir/cfgread-bench" "$c" || return 0
    gcc -static -O2 -std=gnu11 -Wall -Wextra -Werror -o "$dir/cfgread-bench.tmp" "$c"
    mv "$dir/cfgread-bench.tmp" "$dir/cfgread-bench"
}

# A second archive appended to the guest's (the kernel unpacks both, later
# files replacing earlier ones): the benchmark, and this tree's init again,
# since cache/xen is shared with other trees that may rebuild guest-initrd.gz.
bench_initrd() {
    init=$src/guest/initramfs/init
    stale "$dir/guest-bench-initrd.gz" "$init" "$dir/cfgread-bench" "$dir/guest-initrd.gz" || return 0
    root=$dir/guest-bench-overlay
    rm -rf "$root"
    mkdir -p "$root/bin"
    cp "$dir/cfgread-bench" "$root/bin/cfgread-bench"
    cp "$init" "$root/init"
    chmod 755 "$root/init" "$root/bin/cfgread-bench"
    { cat "$dir/guest-initrd.gz"
      (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -1
    } > "$dir/guest-bench-initrd.gz.tmp"
    mv "$dir/guest-bench-initrd.gz.tmp" "$dir/guest-bench-initrd.gz"
}

# The kernel's own symbol table, read once from /proc/kallsyms under plain
# QEMU (about 20 s of TCG): with nokaslr its addresses are the tier guest's.
symbols() {
    kernel=$guest/vmlinuz
    stale "$dir/guest-kallsyms" "$kernel" || return 0
    root=$dir/kallsyms-initramfs
    rm -rf "$root"
    mkdir -p "$root/bin" "$root/proc"
    cp "$dir/busybox-root/bin/busybox" "$root/bin/busybox"
    printf '%s\n' '#!/bin/busybox sh' '/bin/busybox mount -t proc proc /proc' \
        'echo 0 > /proc/sys/kernel/kptr_restrict' 'echo KALLSYMS-BEGIN' \
        '/bin/busybox cat /proc/kallsyms' 'echo KALLSYMS-END' '/bin/busybox poweroff -f' \
        > "$root/init"
    chmod 755 "$root/init" "$root/bin/busybox"
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -1 > "$dir/kallsyms-initrd.gz"
    rm -f "$dir/kallsyms-serial.txt"
    timeout 300 qemu-system-x86_64 -nodefaults -m 512 -display none -no-reboot \
        -serial "file:$dir/kallsyms-serial.txt" -kernel "$kernel" \
        -initrd "$dir/kallsyms-initrd.gz" -append "console=ttyS0 quiet nokaslr rdinit=/init" \
        > /dev/null 2>&1 || true
    sed -n '/KALLSYMS-BEGIN/,/KALLSYMS-END/p' "$dir/kallsyms-serial.txt" 2>/dev/null | tr -d '\r' |
        grep -v '^KALLSYMS-' > "$dir/guest-kallsyms.tmp" || true
    if [ -s "$dir/guest-kallsyms.tmp" ]; then
        mv "$dir/guest-kallsyms.tmp" "$dir/guest-kallsyms"
    else
        say "could not read the guest kernel's symbols: xenctx will show raw addresses"
    fi
    rm -rf "$root" "$dir/kallsyms-serial.txt" "$dir/kallsyms-initrd.gz" "$dir/guest-kallsyms.tmp"
}

usb_disk() {
    [ -s "$dir/usb-disk.img" ] || truncate -s 1M "$dir/usb-disk.img"
}

rc=0
"$src/scripts/guest-image" || exit $?
hypervisor || rc=$?
[ $rc -eq 0 ] && { guest_qemu || rc=$?; }
[ $rc -eq 0 ] && { busybox || rc=$?; }
[ $rc -eq 0 ] || exit $rc
modules
dom0_initrd
guest_initrd
bench_program
bench_initrd
usb_disk
symbols
say "ready in $dir"
