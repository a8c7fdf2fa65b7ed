#!/bin/sh
# Host check for cases/tpm_pcr_read.sh: the PCR_Extend the guest reported (VMBED-DATA
# pcr16_extend_digest) really crossed the TPM interface: swtpm logged a TPM2_PCR_Extend
# (command code 0x182) carrying TPM_ALG_SHA256 (0x000b) followed by that digest.
set -eu
digest=$(sed -n 's/^pcr16_extend_digest=//p' "$VMBED_DATA")
[ -n "$digest" ] || { echo "tpm_extend_on_bus: no pcr16_extend_digest in $VMBED_DATA" >&2; exit 1; }
"$(dirname "$0")/../tpmlog" "$VMBED_TPM_LOG" --expect-cmd 0x182 "000b$digest"
echo "tpm_extend_on_bus: TPM2_PCR_Extend with digest ${digest%"${digest#????????????????}"}... seen in the swtpm log"
