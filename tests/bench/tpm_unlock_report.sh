#!/usr/bin/env bash
# tpm_unlock_report.sh SWTPM_LOG ROUNDS: TPM commands per unlock of each path
# of vm_tpm_unlock.sh, from the swtpm log, framed by its PCR 16 marker extends.
# Commands between two markers = the unlocks' commands + the second marker
# tool's own commands before its TPM2_PCR_Extend (measured by calib-a/calib-b).
set -euo pipefail
log=$1
rounds=$2
tpmlog=$(dirname "$0")/../vm/tpmlog
digest() { printf 'volmgr-bench-%s' "$1" | sha256sum | cut -c1-64; }

bash "$tpmlog" "$log" | awk '$1 == "cmd" { print NR, $2, $3 }' >"$log.cmds"
# line number (in command order) of the PCR_Extend carrying a marker
pos() {
  awk -v d="$(digest "$1")" '$2 == "00000182" && index($3, d) { print NR; exit }' "$log.cmds"
}
between() {  # commands strictly between two markers, minus the marker overhead
  local a b
  a=$(pos "$1")
  b=$(pos "$2")
  [[ -n $a && -n $b ]] || { echo "marker $1/$2 not in $log" >&2; exit 1; }
  echo $((b - a - 1))
}
overhead=$(between calib-a calib-b)
echo "marker overhead: $overhead commands"
for path in volmgr systemd; do
  total=$(between "$path-begin" "$path-end")
  a=$(pos "$path-begin")
  b=$(pos "$path-end")
  echo "$path: $(((total - overhead) / rounds)) TPM commands per unlock ($((total - overhead)) in $rounds)"
  awk -v a="$a" -v b="$((b - overhead))" 'NR > a && NR < b { n[$2]++ }
       END { for (c in n) printf "    0x%s x%g\n", c, n[c] / r }' r="$rounds" "$log.cmds" | sort
done
