#!/bin/bash
# `volmgr encrypt` on a regular image file (issue 17 item 1): the filesystem
# must fit the data segment afterwards, and the image must never shrink.
#
# resize2fs truncates a regular file when it shrinks the filesystem on it, so
# the shrink that makes room for the header also cut the image by 32 MiB;
# libcryptsetup then laid the data segment out over the shorter file, and the
# ext4 (which still had the size resize2fs gave it) no longer fit: "bad
# geometry" at mount. Checked here without device-mapper: image size, the
# ext4 block count x block size against the data segment (from stock
# cryptsetup's JSON metadata), and the plaintext through `volmgr-recover
# extract`: e2fsck -fn clean, every file's hash. Then the same after
# `encrypt --init-only` + `conversion resume`, an ext4 that already leaves
# the tail free, and `volmgr-recover verify` on a volume whose filesystem is
# larger than its data segment (made by stock `cryptsetup reencrypt` over an
# ext4 nobody shrank): it must say so and fail. `conversion status` (item 3):
# a plain ext4 is "not a volume", a conversion whose process died is
# "interrupted", not "paused".
# shellcheck source=tests/integration/recover_lib.sh
source "$(dirname "$(realpath "$0")")/recover_lib.sh"

for tool in mkfs.ext4 e2fsck dumpe2fs debugfs resize2fs; do
  command -v "$tool" >/dev/null 2>&1 || { echo "SKIP [$TEST_NAME]: no $tool"; exit $SKIP; }
done
export VOLMGR_STATE_DIR=$WORK/state
printf 'conversion-pass' >pass

# A tree of known files (some large enough to span many blocks).
mkdir tree tree/sub
printf 'hello from before the encryption\n' >tree/hello.txt
head -c 3000000 /dev/urandom >tree/blob.bin
head -c 70000 /dev/urandom >tree/sub/small.bin
for i in $(seq 1 40); do printf 'file %s\n' "$i" >"tree/sub/f$i.txt"; done
(cd tree && find . -type f -print0 | sort -z | xargs -0 sha256sum) >tree.sums

# new_ext4 IMG SIZE [FS_SIZE]: IMG of SIZE holding an ext4 of FS_SIZE
# (default: the whole image) with the tree.
new_ext4() {
  new_image "$1" "$2"
  expect 0 mkfs.ext4 -q -F -b 4096 -d tree -L before "$1" ${3:+"$3"}
}

# seg_bytes IMG: the data segment's size in bytes (a "dynamic" segment runs
# to the end of the device).
seg_bytes() {
  local json off size
  json=$(cryptsetup luksDump --dump-json-metadata "$1")
  off=$(jq -r '.segments["0"].offset' <<<"$json")
  size=$(jq -r '.segments["0"].size' <<<"$json")
  if [[ $size == dynamic ]]; then
    echo $(($(stat -c %s "$1") - off))
  else
    echo "$size"
  fi
}

# fs_bytes FILE: ext4 block count x block size.
fs_bytes() {
  local out blocks bs
  out=$(dumpe2fs -h "$1" 2>/dev/null)
  blocks=$(awk -F: '/^Block count:/ {gsub(/ /, "", $2); print $2}' <<<"$out")
  bs=$(awk -F: '/^Block size:/ {gsub(/ /, "", $2); print $2}' <<<"$out")
  echo $((blocks * bs))
}

# check_volume IMG SIZE: IMG is still SIZE bytes, holds an encrypted volume
# whose ext4 fits its data segment, e2fsck -fn finds it clean and every file
# reads back with its hash.
check_volume() {
  local img=$1 size=$2 seg fs
  [[ $(stat -c %s "$img") -eq $size ]] ||
    fail "$img is $(stat -c %s "$img") bytes, was $size: the image shrank"
  expect 0 cryptsetup isLuks "$img"
  if cryptsetup luksDump "$img" | grep -q online-reencrypt; then
    fail "the conversion of $img did not finish"
  fi
  seg=$(seg_bytes "$img")
  rm -f "$img.plain"
  expect_vr 0 extract "$img" --to "$img.plain" --key-file pass -q
  [[ $(stat -c %s "$img.plain") -eq $seg ]] ||
    fail "extract gave $(stat -c %s "$img.plain") bytes, the segment is $seg"
  fs=$(fs_bytes "$img.plain")
  ((fs > 0)) || fail "no ext4 superblock in the plaintext of $img"
  ((fs <= seg)) ||
    fail "the ext4 in $img is $fs bytes, its data segment only $seg (bad geometry at mount)"
  expect 0 e2fsck -fn "$img.plain"
  rm -rf out && mkdir out
  debugfs -R "rdump / $WORK/out" "$img.plain" >/dev/null 2>&1
  [[ -d out/sub || -d out/tree/sub ]] || fail "debugfs could not read the tree back"
  local root=out
  [[ -d out/sub ]] || root=out/tree
  (cd "$root" && sha256sum --quiet -c "$WORK/tree.sums") ||
    fail "files in $img differ from the originals"
  rm -f "$img.plain"
}

# ---------------------------------------------------------------------------
step "1: encrypt an image file whose ext4 fills it: image size unchanged, ext4 fits the segment"
new_ext4 a.img 96M
size=$(stat -c %s a.img)
expect_vm 0 encrypt a.img --new-key-file pass --json "${ARGON2[@]}"
[[ $(out | jq -r .state) == encrypted ]] || fail "state $(out | jq -r .state)"
[[ $(out | jq -r .shrunk) == true ]] || fail "the filesystem was not shrunk"
check_volume a.img "$size"

step "2: encrypt --init-only, then conversion resume: the same"
new_ext4 b.img 80M
size=$(stat -c %s b.img)
expect_vm 0 encrypt b.img --init-only --new-key-file pass --json "${ARGON2[@]}"
[[ $(stat -c %s b.img) -eq $size ]] || fail "--init-only changed the image size"
expect_vm 0 conversion resume b.img --key-file pass
check_volume b.img "$size"

step "3: an ext4 that already leaves the last 32 MiB free is not shrunk"
new_ext4 c.img 96M 60M
size=$(stat -c %s c.img)
expect_vm 0 encrypt c.img --new-key-file pass --json "${ARGON2[@]}"
[[ $(out | jq -r .shrunk) == false ]] || fail "a filesystem that fits was shrunk"
check_volume c.img "$size"

step "4: a 512-byte-sector encryption of a 1 KiB-block ext4"
new_image d.img 72M
expect 0 mkfs.ext4 -q -F -b 1024 -d tree d.img
size=$(stat -c %s d.img)
expect_vm 0 encrypt d.img --new-key-file pass --sector-size 512 --json "${ARGON2[@]}"
check_volume d.img "$size"

step "5: volmgr-recover verify reports a filesystem larger than its data segment"
# Stock cryptsetup moves 16 MiB of data into the header's place and trusts
# the caller that the tail was free: over an ext4 that fills the image, the
# volume's filesystem is 16 MiB larger than its data segment.
new_ext4 e.img 64M
expect 0 cryptsetup reencrypt --encrypt --type luks2 --reduce-device-size 16M \
  --sector-size 4096 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 -q \
  --key-file pass e.img
expect_vr 9 verify e.img --key-file pass
has "does not fit"
has "$((64 << 20)) bytes"
expect_vr 9 verify e.img --key-file pass --json
[[ $(out | jq -r .filesystem_size_bytes) -eq $((64 << 20)) ]] ||
  fail "JSON filesystem_size_bytes $(out | jq -r .filesystem_size_bytes)"
[[ $(out | jq -r .filesystem_fits) == false ]] || fail "JSON filesystem_fits"
# A volume whose filesystem fits passes, and says how large it is.
expect_vr 0 verify a.img --key-file pass --json
[[ $(out | jq -r .filesystem_fits) == true ]] || fail "a.img: JSON filesystem_fits"
(($(out | jq -r .filesystem_size_bytes) > 0)) || fail "a.img: no filesystem size"

step "6: conversion status: a plain ext4 is no volume; a conversion nobody paused is not \"paused\""
new_ext4 f.img 64M
sum=$(file_sum f.img)
expect_vm 0 conversion status f.img
has "is not a volume"
lacks "Invalid argument"
expect_vm 0 conversion status f.img --json
[[ $(out | jq -r .volume) == false && $(out | jq -r .in_progress) == false ]] ||
  fail "JSON: $(out | jq -c .)"
[[ $(file_sum f.img) == "$sum" ]] || fail "conversion status wrote to the image"
expect_vm 3 conversion status nonexistent.img
new_ext4 g.img 80M
expect_vm 0 encrypt g.img --init-only --new-key-file pass --json "${ARGON2[@]}"
uuid=$(out | jq -r .uuid)
expect_vm 0 conversion status g.img
has "Encryption paused"
# The state file a conversion killed mid-run leaves: "running", its process gone.
mkdir -p "$VOLMGR_STATE_DIR/conversion"
jq -n --arg u "$uuid" --arg b "$(cat /proc/sys/kernel/random/boot_id)" \
  '{version: 1, uuid: $u, device: "g.img", header: "g.img", direction: "encrypt",
    resilience: "datashift", pid: 2147483000, boot_id: $b, running: true,
    size_bytes: 1000, done_bytes: 370, bytes_per_second: 5, eta_seconds: 9,
    updated: "2026-01-01T00:00:00Z"}' >"$VOLMGR_STATE_DIR/conversion/$uuid.json"
expect_vm 0 conversion status g.img
has "Encryption interrupted at 37 %"
lacks "paused"
expect_vm 0 conversion status g.img --json
[[ $(out | jq -r .state) == interrupted ]] || fail "JSON state $(out | jq -r .state)"
# Fields of the wrong type read as absent, never abort.
jq '.running = "yes" | .pid = "x" | .size_bytes = -1 | .boot_id = 5' \
  "$VOLMGR_STATE_DIR/conversion/$uuid.json" >st.tmp && mv st.tmp "$VOLMGR_STATE_DIR/conversion/$uuid.json"
expect_vm 0 conversion status g.img
has "Encryption paused"
expect_vm 0 conversion resume g.img --key-file pass
check_volume g.img $((80 << 20))

step "7: decrypt back offline: a plain ext4 with every file, no staged header left"
size=$(stat -c %s a.img)
expect_vm 0 decrypt a.img --key-file pass
[[ $(stat -c %s a.img) -eq $size ]] || fail "decrypt changed the image size"
expect 1 cryptsetup isLuks a.img
expect 0 e2fsck -fn a.img
rm -rf out && mkdir out
debugfs -R "rdump / $WORK/out" a.img >/dev/null 2>&1
(cd out && sha256sum --quiet -c "$WORK/tree.sums") || fail "files differ after decrypt"
if compgen -G "$VOLMGR_STATE_DIR/conversion/*.init" >/dev/null; then
  fail "a staged header was left: $(ls "$VOLMGR_STATE_DIR/conversion")"
fi
expect_vm 0 conversion status a.img
has "is not a volume"

finish
