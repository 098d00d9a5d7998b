#!/bin/bash
# Writes the WiX fragment listing every file of the bundle (component group AppFiles under INSTALLDIR).
#   scripts/files_wxs.sh <bundle dir, relative to the folder wixl runs in> <out.wxs>
# wixl needs Win64="yes" on 64-bit components; wixl-heat does not write it.
set -euo pipefail
src=${1%/}
out=$2
find "$src" -type f | LC_ALL=C sort | wixl-heat -p "$src/" --directory-ref INSTALLDIR --component-group AppFiles \
  --var var.SourceDir | sed 's/<Component /<Component Win64="yes" /' > "$out.tmp"
mv "$out.tmp" "$out"
