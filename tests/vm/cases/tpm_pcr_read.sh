# The guest sees a TPM 2.0 (swtpm behind qemu tpm-tis) and tpm2-tools work against it.
# Guest script for tests/vm/vmbed --tpm.
. /vmbed/lib.sh
set -eu

export TPM2TOOLS_TCTI=device:/dev/tpmrm0

# pcr_hex INDEX: the sha256 PCR value as 64 lowercase hex digits.
pcr_hex() {
  tpm2_pcrread "sha256:$1" | sed -n "s/^[[:space:]]*$1[[:space:]]*:[[:space:]]*0x\([0-9A-Fa-f]*\).*/\1/p" |
    tr 'A-F' 'a-f'
}
ZERO=0000000000000000000000000000000000000000000000000000000000000000

step 1 "TPM device nodes exist"
[ -c /dev/tpm0 ] || fail "/dev/tpm0 missing"
[ -c /dev/tpmrm0 ] || fail "/dev/tpmrm0 missing"
grep -qx 2 /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null || fail "tpm0 is not a TPM 2.0"

step 2 "read PCR 0 and 7 (firmware measured them)"
tpm2_pcrread sha256:0,7 || fail "tpm2_pcrread failed"
p0=$(pcr_hex 0)
p7=$(pcr_hex 7)
[ "${#p0}" -eq 64 ] || fail "PCR 0 not parsed: '$p0'"
[ "${#p7}" -eq 64 ] || fail "PCR 7 not parsed: '$p7'"
[ "$p0" != "$ZERO" ] || fail "PCR 0 is zero: SeaBIOS did not measure"
data pcr0_sha256 "$p0"
data pcr7_sha256 "$p7"

step 3 "extend PCR 16: new = SHA256(old || digest)"
old=$(pcr_hex 16)
[ "${#old}" -eq 64 ] || fail "PCR 16 not parsed"
digest=$(printf 'vmbed-pcr-extend-test' | sha256sum | cut -d' ' -f1)
tpm2_pcrextend "16:sha256=$digest" || fail "tpm2_pcrextend failed"
new=$(pcr_hex 16)
want=$(printf '%s%s' "$old" "$digest" | xxd -r -p | sha256sum | cut -d' ' -f1)
echo "PCR16 old=$old"
echo "  digest=$digest"
echo "    new=$new"
echo "   want=$want"
[ "$new" != "$old" ] || fail "PCR 16 did not change"
[ "$new" = "$want" ] || fail "PCR 16 is not SHA256(old || digest)"
data pcr16_extend_digest "$digest"

step 4 "extend again: the chain continues from the new value"
tpm2_pcrextend "16:sha256=$digest" || fail "second tpm2_pcrextend failed"
want2=$(printf '%s%s' "$new" "$digest" | xxd -r -p | sha256sum | cut -d' ' -f1)
[ "$(pcr_hex 16)" = "$want2" ] || fail "second extend does not chain"

step 5 "tpm2_getrandom"
r1=$(tpm2_getrandom --hex 32) || fail "tpm2_getrandom failed"
r2=$(tpm2_getrandom --hex 32) || fail "second tpm2_getrandom failed"
[ "${#r1}" -eq 64 ] || fail "expected 64 hex digits, got '${r1}'"
[ "$r1" != "$r2" ] || fail "two random draws are equal"

step 6 "the firmware event log replays to PCR 0"
log=/sys/kernel/security/tpm0/binary_bios_measurements
[ -r "$log" ] || fail "no TPM event log at $log"
tpm2_eventlog "$log" >/tmp/eventlog || fail "tpm2_eventlog failed"
replay0=$(sed -n '/^  sha256:/,/^  sha[0-9]*:/p' /tmp/eventlog |
  sed -n 's/^[[:space:]]*0[[:space:]]*:[[:space:]]*0x\([0-9a-fA-F]*\).*/\1/p' | head -n 1 | tr 'A-F' 'a-f')
[ "$replay0" = "$p0" ] || fail "event log replays PCR 0 to '$replay0', TPM has $p0"

echo "tpm_pcr_read: all steps passed"
