#!/bin/bash
# A real Linux guest sees qemu-dm's multi-function slots.  Debian's kernel
# boots under QEMU (TCG) with the ICH10 USB controller of a real ASUS board
# (simulated host) in guest slot 07; then the GeForce 210 + its HDMI audio
# are hot-plugged least-mapped, and unplugged.  At each step: what the
# guest's own kernel lists in /sys/bus/pci.  Bash for `read -t`: every wait
# is on qemu-dm's output, with a timeout, never a sleep.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$top/build}
hosts=$top/tests/data/hosts
dump=asus-p6t6-x58-ich10-gt218
work=$(mktemp -d "${TMPDIR:-/tmp}/demo-real-guest.XXXXXX")
dm_pid=
cleanup() {
    exec 3>&- 4<&- 2>/dev/null || true
    [ -n "$dm_pid" ] && kill "$dm_pid" 2>/dev/null && wait "$dm_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }
start=$(date +%s.%N)
elapsed() { awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }'; }

say "The guest image: Debian's kernel + a busybox initramfs (cached in cache/guest)"
"$top/scripts/guest-image" 2>&1

say "A simulated host from the real ASUS P6T6 dump, every function assignable"
"$B/simhost" "$hosts/$dump.lspci" "$work/host" --sizes "$hosts/$dump.sizes" --all-assignable >/dev/null
lspci -A linux-sysfs -O sysfs.path="$work/host" -nn -s 00:1d
lspci -A linux-sysfs -O sysfs.path="$work/host" -nn -s 06:00

mkfifo "$work/in" "$work/out"
"$B/qemu-dm" -host-sysfs "$work/host" -hypervisor sim -pci '00:1d.*@7' \
    -guest qemu -guest-timeout 170 -monitor stdio <"$work/in" >"$work/out" 2>&1 &
dm_pid=$!
exec 3>"$work/in" 4<"$work/out"

# Lines of qemu-dm's output until one matches $1 (an ERE); qemu-vm lines
# and monitor replies are shown as they pass.
wait_for() {
    local line
    while IFS= read -r -t "${2:-60}" line <&4; do
        line=${line#(qemu) }
        case $line in
            *qemu-vm:*|*removed\ guest\ slot*|*" -> 00:"*|*"not shown to the QEMU guest"*|\
            *"served by qemu-dm"*|*"above 4 GiB"*) printf '   qemu-dm| %s\n' "$line" ;;
            *"Unable to write to socket: Bad file descriptor"*)
                printf '   %s\n     (QEMU 7.2: at unplug its proxy syncs memory once more on the socket it\n      has just closed; harmless)\n' "$line" ;;
            *qemu-system:*) printf '   %s\n' "$line" ;;
        esac
        if printf '%s\n' "$line" | grep -Eq -- "$1"; then
            return 0
        fi
    done
    echo "demo: no '$1' from qemu-dm in time" >&2
    exit 1
}

# The guest's next PCI view, one line a function, passed-through slots marked.
show_view() {
    local line bdf ven dev cls hdr bars
    wait_for "PCIVIEW-BEGIN seq=$1" 120
    printf '   the guest kernel lists (/sys/bus/pci/devices), %s after start:\n' "$(elapsed)"
    while IFS= read -r -t 30 line <&4; do
        case $line in
            *PCIVIEW-END*) return 0 ;;
            *PCIDEV*) ;;
            *) continue ;;
        esac
        set -- ${line#*PCIDEV }
        bdf=${1#0000:} ven=${2#vendor=} dev=${3#device=} cls=${4#class=} hdr=${5#hdr=} bars=${6#bars=}
        case $bdf in 00:0[0-3].*) mark="  (QEMU's own)" ;; *) mark="  <- qemu-dm" ;; esac
        printf '     %s  %s:%s  class %s  header %s%s%s\n' "$bdf" "$ven" "$dev" "$cls" "$hdr" \
            "$( [ $((0x$hdr & 0x80)) -ne 0 ] && echo ' multi-function' || echo '               ')" "$mark"
        [ "$bars" != - ] && case $bdf in 00:0[0-3].*) ;; *) printf '         BARs %s\n' "$bars" ;; esac
    done
    echo "demo: the view did not end" >&2
    exit 1
}

say "Boot: qemu-dm -pci '00:1d.*@7' -guest qemu  (USB UHCI x3 + EHCI, identity into slot 07)"
wait_for "qemu-vm: booting" 10
show_view 0

say "Hot-plug through the monitor: pci_add 06:00.*,map=least  (GeForce 210 + HDMI audio)"
echo "pci_add 06:00.*,map=least" >&3
wait_for "plugged into the guest" 30
show_view 1

say "Unplug the whole slot: pci_del 06:00.0"
echo "pci_del 06:00.0" >&3
wait_for "sockets released" 40
show_view 2

say "Quit: qemu-dm stops QEMU and exits"
echo quit >&3
wait_for "QEMU stopped" 20
wait "$dm_pid"
dm_pid=
printf '\ndemo: done in %s\n' "$(elapsed)"
