#!/bin/bash
# Installs what trainer needs from Debian's packages: the build tools, Open
# MPI, OpenBLAS, HDF5 (library and h5dump), Check, the demo data sets (and
# the English and Spanish Bibles diatheke reads, for translation), and
# for the tests valgrind, clang (with its libFuzzer runtime) and iproute2
# (the multi-node test's hosts: ip, tc).
# Run as root (or with sudo available). Safe to run again.
set -euo pipefail
packages=(
    build-essential autoconf automake libtool pkg-config
    openmpi-bin libopenmpi-dev libopenblas-dev libhdf5-dev hdf5-tools zlib1g-dev libpng-dev check
    dataset-fashion-mnist bible-kjv diatheke sword-text-kjv sword-text-sparv procps
    valgrind clang libclang-rt-14-dev gnuplot-nox python3 iproute2
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#packages[@]} packages present"
    exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
