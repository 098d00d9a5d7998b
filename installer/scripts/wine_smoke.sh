#!/bin/bash
# Wine smoke test of the MSI: silent install with IT's properties, upgrade to a higher version
# (properties kept, old version removed), silent uninstall (program files, registry, shortcuts gone;
# the data folder is never touched).
#
#   scripts/wine_smoke.sh <v1.msi> <v2.msi> <bundle dir> <work dir>
#
# Wine is not Windows: it proves the installer definition (tables, sequences, upgrade logic), not the
# Windows binaries. Wine resolves per-machine shell folders (Desktop, Start menu) to the user's, so
# shortcuts are looked for wherever msiexec's log says DesktopFolder/ProgramMenuFolder point.
set -euo pipefail
v1=$(realpath "$1"); v2=$(realpath "$2"); bundle=$(realpath "$3"); work=$(realpath -m "$4")
rm -rf "$work"; mkdir -p "$work/home/Desktop"

fail() { echo "SMOKE FAIL: $*" >&2; exit 1; }
ok() { echo "ok   $*"; }

# Room. Wine copies each MSI it installs into C:\windows\Installer (its package cache) and unpacks the
# files into Program Files, so during the upgrade the prefix holds both cached packages and one installed
# copy: ~2 x MSI + bundle, plus ~1 GiB for the prefix itself (measured: 4.0 GB at the peak for the light
# package). On a full disk Wine's msiexec does not say so: it returns 1603 (exit 67), or installs
# truncated files, or loses the shortcuts. So the need is checked first; when the work dir's disk lacks
# it (a CI disk already holding the venv, models, bundle and MSIs), the prefix goes to /dev/shm if that
# tmpfs and the memory behind it have room; otherwise the smoke stops here and says why.
mib() { echo $(( ($1 + 1048575) / 1048576 )); }
avail_mib() { df --output=avail -B1M "$1" 2>/dev/null | tail -1 | tr -d ' '; }
need=$(( $(mib "$(stat -c %s "$v1")") + $(mib "$(stat -c %s "$v2")") + $(du -sm "$bundle" | cut -f1) + 1024 ))
here=$(avail_mib "$work")
prefix="$work/prefix"
if [ "$here" -lt "$need" ]; then
  shm=$( [ -d /dev/shm ] && [ -w /dev/shm ] && avail_mib /dev/shm || echo 0)
  mem=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo 2>/dev/null || echo 0)
  if [ "${shm:-0}" -ge "$need" ] && [ "${mem:-0}" -ge $(( need + 4096 )) ]; then
    prefix=$(mktemp -d /dev/shm/madoguchi-smoke.XXXXXX)
    echo "note the Wine prefix needs ${need} MiB and $work has ${here} MiB free: using $prefix (tmpfs, ${shm} MiB free)"
  else
    fail "not enough room for the Wine prefix: it needs ${need} MiB (2 cached MSIs + the installed bundle + the prefix); $work has ${here} MiB free, /dev/shm ${shm:-0} MiB with ${mem:-0} MiB of memory available. Free disk space and run again."
  fi
fi
export WINEPREFIX="$prefix" HOME="$work/home" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" WINEARCH=win64
export XDG_CONFIG_HOME="$work/home/.config" XDG_DATA_HOME="$work/home/.local/share"
cleanup() {  # the prefix goes once the smoke has passed, and always when it is in memory; logs stay in $work
  local rc=$?
  wineserver -k >/dev/null 2>&1 || true
  if [ "$rc" = 0 ] || [ "$prefix" != "$work/prefix" ]; then rm -rf "$prefix"; fi
  exit "$rc"
}
trap cleanup EXIT
msi_failed() {  # msi_failed WHAT LOG RC: msiexec's Windows status arrives modulo 256 (1603 -> 67)
  local why code=$3
  [ "$code" = 67 ] && code="67 (= 1603 mod 256, fatal error during installation)"
  why=$( [ -f "$2" ] && tr -d '\0\r' < "$2" | grep -B4 -m1 'Return value 3' | tr '\n' ' ' | cut -c1-600 || true)
  fail "$1: msiexec exit $code; free in the prefix: $(avail_mib "$WINEPREFIX") MiB${why:+; log: $why}"
}
winpath() { echo "Z:${1//\//\\}"; }
t0=$(date +%s)
wineboot -i >"$work/wineboot.log" 2>&1 || fail "wineboot"
# Wine's shell folders follow XDG; keep them inside the work dir.
ok "wine prefix ready ($(( $(date +%s) - t0 ))s)"

PF="$WINEPREFIX/drive_c/Program Files/Madoguchi"
regval() {  # regval NAME -> value of HKLM\Software\Madoguchi\NAME ("" when absent)
  # asked up to three times: a `wine reg query` now and then prints nothing for a value that is
  # there (seen once: OFFICESERVER "lost" right after an upgrade whose log wrote it, and present
  # when the same prefix was queried afterwards)
  local v i
  for i in 1 2 3; do
    v=$(wine reg query 'HKLM\Software\Madoguchi' /v "$1" 2>/dev/null | tr -d '\r' |
      awk -v n="$1" '$1 == n { $1 = ""; $2 = ""; sub(/^  */, ""); print }')
    [ -n "$v" ] && break
    sleep 1
  done
  printf '%s\n' "$v"
}
products() {  # DisplayName=DisplayVersion of every Madoguchi entry in Add/Remove Programs
  wine reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall' /s 2>/dev/null | tr -d '\r' |
    awk '/DisplayName/ {n=$3} /DisplayVersion/ {v=$3} /^HKEY/ {if (n=="Madoguchi") print n"="v; n=""; v=""} END {if (n=="Madoguchi") print n"="v}'
}
shortcut_dirs() {  # where this Wine put the Desktop and Start-menu folders, from the msiexec log
  tr -d '\0\r' < "$1" |
    sed -n 's/^Property(S): \(DesktopFolder\|ProgramMenuFolder\) = \(.*\)$/\2/p' | sort -u
}
unixpath() { winepath -u "$1" 2>/dev/null | tr -d '\r'; }
msi_version() { msiinfo export "$1" Property | awk -F'\t' '$1 == "ProductVersion" {print $2}' | tr -d '\r'; }
V1=$(msi_version "$v1"); V2=$(msi_version "$v2")
[ -n "$V1" ] && [ -n "$V2" ] && [ "$V1" != "$V2" ] || fail "the two MSIs need different versions ($V1, $V2)"

# ---------------------------------------------------------------- 1. silent install with properties
t=$(date +%s)
wine msiexec /i "$(winpath "$v1")" /qn 'DATADIR=C:\MadoguchiData' 'MODELSDIR=C:\Madoguchi Models' \
  'MANUALSDIR=\\fileserver\manuals' 'OFFICESERVER=pg01.office.local' ENCRYPT=0 /l*v "$(winpath "$work/install.log")" ||
  msi_failed "install of $V1" "$work/install.log" $?
ok "silent install of $V1 ($(( $(date +%s) - t ))s)"
for f in madoguchi madoguchi.exe; do [ -f "$PF/$f" ] && exe=$f; done
[ -n "${exe:-}" ] || fail "no madoguchi executable in $PF"
[ -f "$PF/models/manifest.toml" ] || fail "models/manifest.toml not installed"
[ -f "$PF/resources/samples/consultation_ja.wav" ] || fail "resources not installed"
n_bundle=$(find "$bundle" -type f | wc -l); n_inst=$(find "$PF" -type f | wc -l)
[ "$n_bundle" = "$n_inst" ] || fail "installed $n_inst files, the bundle has $n_bundle"
cmp -s "$bundle/$exe" "$PF/$exe" || fail "installed $exe differs from the bundle's"
ok "files: $n_inst of $n_bundle installed, executables identical"
[ "$(regval data_dir)" = 'C:\MadoguchiData' ] || fail "registry data_dir = '$(regval data_dir)'"
[ "$(regval models_dir)" = 'C:\Madoguchi Models' ] || fail "registry models_dir = '$(regval models_dir)'"
[ "$(regval manuals_dir)" = '\\fileserver\manuals' ] || fail "registry manuals_dir = '$(regval manuals_dir)'"
[ "$(regval office_server)" = 'pg01.office.local' ] || fail "registry office_server = '$(regval office_server)'"
[ "$(regval security.encrypt)" = 0 ] || fail "registry security.encrypt = '$(regval security.encrypt)'"
[ "$(regval version)" = "$V1" ] || fail "registry version = '$(regval version)'"
ok "registry HKLM\\Software\\Madoguchi: data_dir, models_dir, manuals_dir, office_server, security.encrypt, version $V1"
n_lnk=0
while read -r d; do
  [ -f "$(unixpath "$d")Madoguchi.lnk" ] && n_lnk=$((n_lnk + 1))
  [ -f "$(unixpath "$d")Madoguchi/Madoguchi.lnk" ] && n_lnk=$((n_lnk + 1))
done < <(shortcut_dirs "$work/install.log")
[ "$n_lnk" = 2 ] || fail "expected a desktop and a Start-menu shortcut, found $n_lnk"
ok "shortcuts: desktop and Start menu"
[ "$(products)" = "Madoguchi=$V1" ] || fail "Add/Remove Programs lists '$(products)'"

# ---------------------------------------------------------------- 2. major upgrade keeps the properties
t=$(date +%s)
wine msiexec /i "$(winpath "$v2")" /qn /l*v "$(winpath "$work/upgrade.log")" ||
  msi_failed "upgrade to $V2" "$work/upgrade.log" $?
ok "silent upgrade $V1 -> $V2 ($(( $(date +%s) - t ))s)"
[ "$(products)" = "Madoguchi=$V2" ] || fail "after upgrade Add/Remove Programs lists '$(products)' (old version not removed?)"
ok "old version removed: only $V2 registered"
[ "$(regval version)" = "$V2" ] || fail "registry version after upgrade = '$(regval version)'"
[ "$(regval data_dir)" = 'C:\MadoguchiData' ] || fail "DATADIR lost on upgrade: '$(regval data_dir)'"
[ "$(regval models_dir)" = 'C:\Madoguchi Models' ] || fail "MODELSDIR lost on upgrade: '$(regval models_dir)'"
[ "$(regval manuals_dir)" = '\\fileserver\manuals' ] || fail "MANUALSDIR lost on upgrade: '$(regval manuals_dir)'"
[ "$(regval office_server)" = 'pg01.office.local' ] || fail "OFFICESERVER lost on upgrade: '$(regval office_server)'"
[ "$(regval security.encrypt)" = 0 ] || fail "ENCRYPT=0 lost on upgrade (the default overrode it)"
ok "properties kept across the upgrade"
n_inst=$(find "$PF" -type f | wc -l)
[ "$n_bundle" = "$n_inst" ] || fail "after upgrade $n_inst files, the bundle has $n_bundle"
ok "files after upgrade: $n_inst"

# ---------------------------------------------------------------- 3. uninstall leaves nothing behind
mkdir -p "$WINEPREFIX/drive_c/MadoguchiData" && echo keep > "$WINEPREFIX/drive_c/MadoguchiData/madoguchi.db"
t=$(date +%s)
wine msiexec /x "$(winpath "$v2")" /qn /l*v "$(winpath "$work/uninstall.log")" ||
  msi_failed "uninstall" "$work/uninstall.log" $?
ok "silent uninstall ($(( $(date +%s) - t ))s)"
left=$( [ -d "$PF" ] && find "$PF" -type f | wc -l || echo 0)
[ "$left" = 0 ] || fail "$left files left in $PF"
[ -z "$(wine reg query 'HKLM\Software\Madoguchi' 2>/dev/null | tr -d '\r' | grep REG_)" ] ||
  fail "registry values left in HKLM\\Software\\Madoguchi"
[ -z "$(products)" ] || fail "still listed in Add/Remove Programs: $(products)"
n_lnk=$(find "$WINEPREFIX" "$HOME" -name 'Madoguchi.lnk' 2>/dev/null | wc -l)
[ "$n_lnk" = 0 ] || fail "$n_lnk shortcuts left"
[ -f "$WINEPREFIX/drive_c/MadoguchiData/madoguchi.db" ] || fail "uninstall touched the data folder"
ok "uninstall clean: no files, registry values, shortcuts or product entry left; data folder kept"
echo "SMOKE PASSED in $(( $(date +%s) - t0 ))s"
