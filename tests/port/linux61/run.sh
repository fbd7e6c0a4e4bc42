#!/bin/sh
# run.sh [BUILD_DIR] - one-off validation against real Linux 6.1 driver code (docs/porting.md; not CI).
# Downloads Debian's linux-source-6.1 into a temporary directory (nothing of the kernel enters this
# repository: it is GPL), extracts the notifier parts of three drivers unedited (extract.sh), renames them
# with ../rename.sed, compiles them against umn/kcompat.h + umn/kernel_shim.h + vshim.h with the device
# sides in adapt_*.c, and runs validate_test.cc. BUILD_DIR (default build/test) must have built libumn and
# umn_port_tests (for the renamed drivers.h).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=$(cd "${1:-$root/build/test}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download linux-source-6.1 >/dev/null
dpkg-deb --fsys-tarfile linux-source-6.1_*_all.deb | tar -x ./usr/src/linux-source-6.1.tar.xz
tar -xJf usr/src/linux-source-6.1.tar.xz linux-source-6.1/lib/test_hmm.c linux-source-6.1/include/rdma/ib_umem_odp.h \
  linux-source-6.1/drivers/infiniband/hw/mlx5/odp.c linux-source-6.1/drivers/misc/sgi-gru/grutables.h \
  linux-source-6.1/drivers/misc/sgi-gru/grutlbpurge.c
"$here/extract.sh" "$work/linux-source-6.1" "$work/out"
inc="-I$root/include -I$build/tests/port/renamed -I$root/tests -I$root/tests/port -I$here"
for driver in hmm odp gru; do
  cc -std=gnu11 -O2 -g -Wall -c $inc "out/real_$driver.c" -o "out/real_$driver.o"
done
c++ -std=c++20 -O2 -g $inc "$here/validate_test.cc" out/real_*.o -o validate -L"$build" -Wl,-rpath,"$build" -lumn \
  -lgtest -lgtest_main -lpthread
./validate
