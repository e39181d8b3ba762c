#!/bin/sh
# The lab's base image as a root filesystem tar: busybox-static, its applets as symlinks,
# root in /etc/passwd. Deterministic (sorted, mtime 0, owner root), so the same tar and the
# same layer digest on every machine with the same busybox.
# Usage: sh make-rootfs.sh DIR   (writes DIR/rootfs.tar)
set -eu
out=$1
tree=$(mktemp -d)
chmod 755 "$tree"
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/bin" "$tree/etc" "$tree/tmp" "$tree/proc" "$tree/root"
chmod 1777 "$tree/tmp"
cp /bin/busybox "$tree/bin/busybox"
for applet in sh cat cp echo ls mkdir rm mv touch head tail wc sed grep find chmod \
    tar gzip sort seq du id true false env printf test sleep; do
    ln -s busybox "$tree/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$tree/etc/passwd"
printf 'root:x:0:\n' > "$tree/etc/group"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$tree" -cf "$out/rootfs.tar" .
