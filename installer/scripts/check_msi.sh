#!/bin/bash
# Checks the tables of a built MSI with msiinfo (msitools).
#   scripts/check_msi.sh <x.msi> <bundle dir>
set -euo pipefail
msi=$1; bundle=$2
UPGRADE_CODE='{6D2C9E53-7A41-4B8E-9F0A-3C5E1D2B4A77}'
fail() { echo "MSI CHECK FAIL: $*" >&2; exit 1; }
ok() { echo "ok   $*"; }
table() { msiinfo export "$msi" "$1" | tr -d '\r' | tail -n +4; }   # rows only (3 header lines)
prop() { table Property | awk -F'\t' -v p="$1" '$1 == p {print $2}'; }

tables=$(msiinfo tables "$msi")
for t in File Component Directory Feature Property Upgrade Shortcut Registry AppSearch RegLocator CustomAction \
         InstallExecuteSequence Media; do
  grep -qx "$t" <<<"$tables" || fail "table $t missing"
done
ok "tables present"
[ "$(prop UpgradeCode)" = "$UPGRADE_CODE" ] || fail "UpgradeCode is $(prop UpgradeCode)"
[ "$(prop ALLUSERS)" = 1 ] || fail "not per-machine (ALLUSERS=$(prop ALLUSERS))"
ok "fixed UpgradeCode $UPGRADE_CODE, per-machine (ALLUSERS=1), version $(prop ProductVersion)"
msiinfo suminfo "$msi" | grep -q 'x64;' || fail "summary Template is not x64"
ok "x64 package"

# MajorUpgrade: one row detecting older versions (removed), one detecting newer (downgrade blocked).
up=$(table Upgrade)
[ "$(grep -c "^$UPGRADE_CODE" <<<"$up")" = 2 ] || fail "Upgrade table: $up"
grep -q 'WIX_UPGRADE_DETECTED' <<<"$up" && grep -q 'WIX_DOWNGRADE_DETECTED' <<<"$up" || fail "Upgrade actions"
table InstallExecuteSequence | grep -q '^RemoveExistingProducts' || fail "RemoveExistingProducts not scheduled"
ok "MajorUpgrade: older versions removed, downgrades refused"

# IT's public properties: written to HKLM\Software\Madoguchi and searched back on upgrade.
reg=$(table Registry)
for pair in data_dir:DATADIR models_dir:MODELSDIR manuals_dir:MANUALSDIR office_server:OFFICESERVER security.encrypt:ENCRYPT; do
  name=${pair%%:*}; p=${pair#*:}
  awk -F'\t' -v n="$name" -v v="[$p]" '$2 == 2 && $3 ~ /^Software\\Madoguchi/ && $4 == n && $5 == v' <<<"$reg" |
    grep -q . || fail "Registry row HKLM Software\\Madoguchi $name=[$p] missing"
  table AppSearch | grep -q "^SAVED_$p" || fail "AppSearch for SAVED_$p missing"
  table CustomAction | awk -F'\t' -v p="$p" '$3 == p && $4 == "[SAVED_" p "]"' | grep -q . ||
    fail "restore action for $p missing"
done
table RegLocator | awk -F'\t' '$2 == 2 && $5 == 18' | wc -l | grep -qx 5 || fail "RegLocator rows not HKLM/64-bit raw"
table CustomAction | awk -F'\t' '$1 == "DefaultEncrypt" && $3 == "ENCRYPT" && $4 == "1"' | grep -q . ||
  fail "ENCRYPT does not default to 1"
ok "DATADIR MODELSDIR MANUALSDIR OFFICESERVER ENCRYPT(default 1) -> HKLM\\Software\\Madoguchi, kept across upgrades"

sc=$(table Shortcut)
grep -q $'^StartMenuDesktopApp\tProgramMenuDir' <<<"$sc" || fail "Start-menu shortcut missing"
grep -q $'^DesktopDesktopApp\tDesktopFolder' <<<"$sc" || fail "desktop shortcut missing"
grep -q '\[INSTALLDIR\]madoguchi-desktop' <<<"$sc" || fail "shortcut target is not madoguchi-desktop"
ok "Start-menu and desktop shortcuts to madoguchi-desktop"

table Directory | awk -F'\t' '$1 == "INSTALLDIR" && $2 == "ProgramFiles64Folder"' | grep -q . ||
  fail "INSTALLDIR is not under ProgramFiles64Folder"
n_files=$(table File | wc -l); n_bundle=$(find "$bundle" -type f | wc -l)
[ "$n_files" = "$n_bundle" ] || fail "File table has $n_files rows, the bundle $n_bundle files"
ok "INSTALLDIR under Program Files (64-bit); File table: $n_files files = bundle"
table File | awk -F'\t' '$3 ~ /(^|[|])manifest[.]toml$/' | grep -q . || fail "models/manifest.toml not in the File table"
echo "MSI CHECK PASSED: $msi"
