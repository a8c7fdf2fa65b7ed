# Guest script (busybox ash) for bench_tpm_unlock: time from command start to
# "volume key in hand" on the same TPM (/dev/tpmrm0 over swtpm), N rounds each:
#   volmgr open DEV x --test                     (volmgr-tpm protector)
#   cryptsetup open --test-passphrase --token-only DEV
#                                                (systemd-cryptenroll's systemd-tpm2
#                                                 token through libcryptsetup's plugin)
# Both seal to PCR 7 alone, both keyslots use minimal PBKDF2 (1000 iterations),
# so the difference is the TPM path. Steps 4-5 run each path N times in a
# block framed by PCR 16 extends whose digests the host finds in the swtpm
# log (tpm_unlock_report.sh), to count the TPM commands of each path. Step 6
# times them again interleaved (volmgr, systemd, volmgr, ...), so that a
# neighbour's load on the shared host falls on both alike; the ratio is
# taken from step 6.
. /vmbed/lib.sh
set -eu

N=${BENCH_ROUNDS:-10}
now() { gdate +%s%N; }
mark() {
  tpm2_pcrextend "16:sha256=$(printf 'volmgr-bench-%s' "$1" | sha256sum | cut -d' ' -f1)" >/dev/null
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# time_runs NAME CMD...: N timed runs (after one warm-up), ms per run to /tmp/NAME.ms
time_runs() {
  name=$1
  shift
  "$@" >/dev/null 2>&1 || fail "$name warm-up: $("$@" 2>&1 | tail -3)"
  mark "$name-begin"
  : >"/tmp/$name.ms"
  i=0
  while [ $i -lt "$N" ]; do
    t0=$(now)
    "$@" >/dev/null 2>&1 || fail "$name run $i failed"
    t1=$(now)
    echo $(((t1 - t0) / 1000)) | awk '{ printf "%.1f\n", $1 / 1000 }' >>"/tmp/$name.ms"
    i=$((i + 1))
  done
  mark "$name-end"
  data "${name}_runs_ms" "$(tr '\n' ' ' <"/tmp/$name.ms")"
  data "${name}_median_ms" "$(median <"/tmp/$name.ms")"
}

step 1 "calibration marks (the marker tool's own TPM commands)"
mark calib-a
mark calib-b

step 2 "volmgr: format, TPM protector (PCR 7)"
volmgr format /dev/vda --force --recovery-password-file /tmp/rp >/dev/null
sed -n 's/^Recovery password: //p' /tmp/rp | tr -d '\n' >/tmp/rp.txt
volmgr protector add /dev/vda tpm --tcti device:/dev/tpmrm0 --key-file /tmp/rp.txt </dev/null >/dev/null

step 3 "systemd: LUKS2 (PBKDF2 1000), systemd-cryptenroll --tpm2-device --tpm2-pcrs=7"
printf 'bench-passphrase' >/tmp/pass
cryptsetup luksFormat --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 -q \
  /dev/vdb --key-file /tmp/pass
systemd-cryptenroll --unlock-key-file=/tmp/pass --tpm2-device=/dev/tpmrm0 --tpm2-pcrs=7 \
  /dev/vdb >/tmp/enroll.out 2>&1 || fail "systemd-cryptenroll: $(cat /tmp/enroll.out)"
cryptsetup luksDump /dev/vdb | grep -q systemd-tpm2 || fail "no systemd-tpm2 token"

step 4 "volmgr open --test via the TPM, $N rounds"
time_runs volmgr volmgr open /dev/vda x --test --tcti device:/dev/tpmrm0

step 5 "cryptsetup open --test-passphrase --token-only (systemd-tpm2 token), $N rounds"
time_runs systemd cryptsetup open --test-passphrase --token-only /dev/vdb

step 6 "interleaved: volmgr, systemd, volmgr, ... $N rounds each"
: >/tmp/il_volmgr.ms
: >/tmp/il_systemd.ms
: >/tmp/il_ratio
i=0
while [ $i -lt "$N" ]; do
  t0=$(now)
  volmgr open /dev/vda x --test --tcti device:/dev/tpmrm0 >/dev/null 2>&1 || fail "volmgr round $i"
  t1=$(now)
  cryptsetup open --test-passphrase --token-only /dev/vdb >/dev/null 2>&1 || fail "systemd round $i"
  t2=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", (b - a) / 1e6 }' >>/tmp/il_volmgr.ms
  awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f\n", (b - a) / 1e6 }' >>/tmp/il_systemd.ms
  awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "%.4f\n", (b - a) / (c - b) }' >>/tmp/il_ratio
  i=$((i + 1))
done
data interleaved_volmgr_runs_ms "$(tr '\n' ' ' </tmp/il_volmgr.ms)"
data interleaved_systemd_runs_ms "$(tr '\n' ' ' </tmp/il_systemd.ms)"
data interleaved_volmgr_median_ms "$(median </tmp/il_volmgr.ms)"
data interleaved_systemd_median_ms "$(median </tmp/il_systemd.ms)"
data interleaved_round_ratio_median "$(median </tmp/il_ratio)"

step 7 "process start-up floor (not part of the ratio): --version, $N rounds"
time_runs volmgr_startup volmgr --version
time_runs cryptsetup_startup cryptsetup --version

v=$(median </tmp/il_volmgr.ms)
s=$(median </tmp/il_systemd.ms)
data ratio_volmgr_to_systemd "$(awk -v v="$v" -v s="$s" 'BEGIN { printf "%.3f", v / s }')"
echo "interleaved: volmgr median ${v} ms, systemd median ${s} ms"
echo "bench tpm unlock done"
