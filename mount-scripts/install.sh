#!/usr/bin/env bash
# Builds Slice (release) and installs the `slice` binary and the mount(8) helper, so that
#   mount -t fuse.slice /var/lib/slice /mnt/slice
# and fstab lines such as
#   /var/lib/slice  /mnt/slice  fuse.slice  defaults,allow_other,nofail  0  0
# work. Run as root from the repository. PREFIX defaults to /usr/local.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
prefix=${PREFIX:-/usr/local}
swift build -c release --product slice
install -m 0755 .build/release/slice "$prefix/bin/slice"
install -m 0755 mount-scripts/mount.fuse.slice /sbin/mount.fuse.slice
# allow_other for non-root users needs user_allow_other in /etc/fuse.conf.
if ! grep -q '^user_allow_other' /etc/fuse.conf 2>/dev/null; then echo user_allow_other >> /etc/fuse.conf; fi
echo "installed $prefix/bin/slice and /sbin/mount.fuse.slice"
