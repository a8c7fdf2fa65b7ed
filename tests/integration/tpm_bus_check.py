#!/usr/bin/env python3
"""What a TPM bus sniffer learns from volmgr: nothing that opens the volume.

Reads `tests/vm/tpmlog` lines ("cmd|rsp CODE HEX") of one unlock, recorded by
swtpm --log level=20, and plays the attacker of the known TPM-sniffing attack
on TPM-only BitLocker, who also has the disk (so the token):

  1. No command or response contains any of the --forbid values (VMK, FVEK,
     PIN, SHA-256(PIN)), nor any 16-byte piece of them.
  2. Every 32-byte window of every packet, taken as the TPM secret, is run
     through the protector's KEK derivation (HKDF-SHA256 with the token's
     salt and "volmgr tpm v1" || ID) and used to AES-GCM-unwrap the token's
     wrapped VMK. If any window unwraps it, the secret crossed the bus in
     clear: FAIL. (A TPM2_Unseal without parameter encryption fails here.)
  3. At least one TPM2_Unseal succeeded in the log, so the unlock under test
     really went through the TPM.

--control TOKEN SKFILE is the positive control for step 2: the same attacker
code, fed a stream that contains a startup key's 32 key bytes, must unwrap
that startup-key protector's VMK (and equal --vmk if given); otherwise the
check could be passing vacuously (wrong AAD, wrong HKDF, wrong layout).
Exit 0 on pass, 1 on failure (also when python3-cryptography is missing).
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import struct
import sys

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.exceptions import InvalidTag
except ImportError:  # pragma: no cover
    # .ci/install provides it: a missing module is a failure, never a skip.
    print("FAIL: python3-cryptography is not installed (run ./.ci/install as root)")
    sys.exit(1)

TPM2_CC_UNSEAL = 0x0000015E


def hkdf_sha256(ikm, salt, info, length=32):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def aad(volume_uuid, protector_id, kind):
    # docs/FORMAT.md "Associated data"
    a = b"volmgr-wrap-v1"
    for f in (b"vmk", volume_uuid.encode(), protector_id.encode(), kind.encode()):
        a += struct.pack(">I", len(f)) + f
    return a


def try_unwrap(kek, wrapped, ad):
    # docs/FORMAT.md "Key wrap format": 01 || nonce(12) || ct || tag(16)
    if wrapped[0] != 1:
        raise SystemExit("wrapped key is not version 1")
    try:
        return AESGCM(kek).decrypt(wrapped[1:13], wrapped[13:], ad)
    except InvalidTag:
        return None


def uuid_bytes(text):
    return bytes.fromhex(text.replace("-", ""))


def attacker(streams, token, volume_uuid, label, extra_ikm=b""):
    """Every 32-byte window of every stream as IKM; returns the VMK or None."""
    salt = base64.b64decode(token["params"]["salt"])
    info = label + uuid_bytes(token["id"])
    wrapped = base64.b64decode(token["wrapped_vmk"])
    ad = aad(volume_uuid, token["id"], token["type"][len("volmgr-"):])
    tried = 0
    for data in streams:
        for off in range(0, max(0, len(data) - 31)):
            tried += 1
            kek = hkdf_sha256(data[off:off + 32] + extra_ikm, salt, info)
            vmk = try_unwrap(kek, wrapped, ad)
            if vmk is not None:
                return vmk, tried
    return None, tried


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("packets", help="tpmlog output of the unlock's bus traffic")
    ap.add_argument("--token", required=True, help="the volmgr-tpm token JSON")
    ap.add_argument("--uuid", required=True, help="the volume's LUKS2 UUID")
    ap.add_argument("--forbid", action="append", default=[],
                    metavar="NAME=HEX", help="bytes that must not appear")
    ap.add_argument("--control", nargs=2, metavar=("SK_TOKEN", "SK_FILE"))
    ap.add_argument("--vmk", help="hex of the VMK, for the control")
    a = ap.parse_args()

    packets = []
    with open(a.packets) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                packets.append((parts[0], int(parts[1], 16), bytes.fromhex(parts[2])))
    if not packets:
        print("FAIL: no TPM traffic in the log segment")
        return 1
    ok = True

    # 3. the unlock used the TPM: a successful TPM2_Unseal response follows
    # a TPM2_Unseal command.
    unseals = 0
    for i, (kind, code, _) in enumerate(packets):
        if kind == "cmd" and code == TPM2_CC_UNSEAL and i + 1 < len(packets):
            if packets[i + 1][0] == "rsp" and packets[i + 1][1] == 0:
                unseals += 1
    if unseals == 0:
        print("FAIL: no successful TPM2_Unseal in the log segment")
        ok = False

    # 1. forbidden bytes, whole and in 16-byte pieces
    for spec in a.forbid:
        name, hexval = spec.split("=", 1)
        value = bytes.fromhex(hexval)
        pieces = {value} | {value[i:i + 16] for i in range(0, max(1, len(value) - 15))}
        for kind, code, data in packets:
            for p in pieces:
                if len(p) >= min(16, len(value)) and p in data:
                    print(f"FAIL: {name} (or 16 bytes of it) is in a {kind} 0x{code:08x}")
                    ok = False
                    break

    # 2. the sniffer's offline attack on the TPM secret
    token = json.load(open(a.token))
    if token["params"].get("startup_key"):
        raise SystemExit("use a TPM or TPM+PIN protector for the bus check")
    streams = [d for _, _, d in packets]
    vmk, tried = attacker(streams, token, a.uuid, b"volmgr tpm v1")
    if vmk is not None:
        print("FAIL: a 32-byte window of the bus traffic is the TPM secret: "
              "it unwraps the VMK")
        ok = False

    if a.control:
        sk_token = json.load(open(a.control[0]))
        key = open(a.control[1], "rb").read()[24:56]
        noise = os.urandom(200)
        got, _ = attacker([noise + key + noise], sk_token, a.uuid,
                          b"volmgr startup-key v1")
        if got is None:
            print("FAIL: control: the attacker code does not unwrap a startup "
                  "key protector whose key is in its input (the check is void)")
            ok = False
        elif a.vmk and got != bytes.fromhex(a.vmk):
            print("FAIL: control: unwrapped VMK differs from --vmk")
            ok = False
        else:
            print("control: attacker code unwraps the startup-key protector "
                  "from a stream holding its key")

    print(f"{len(packets)} packets, {unseals} TPM2_Unseal, {tried} windows "
          f"tried as TPM secret, {len(a.forbid)} forbidden values: "
          + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
