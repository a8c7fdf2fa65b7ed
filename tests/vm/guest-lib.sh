# vmbed guest helper library: source it from a test script with  . /vmbed/lib.sh
# (busybox ash). Gives numbered steps whose failure names the step, and result helpers.
# shellcheck shell=sh

VMBED_STEP=0
VMBED_STEP_DESC="(setup)"

# step N "description": start step N; printed so the console shows progress.
step() {
  VMBED_STEP=$1
  shift
  VMBED_STEP_DESC="$*"
  echo "--- step $VMBED_STEP: $VMBED_STEP_DESC"
}

# fail "message": report the failing step and exit 1.
fail() {
  echo "FAIL: step $VMBED_STEP ($VMBED_STEP_DESC): $*"
  VMBED_FAIL_REPORTED=1
  exit 1
}

# data KEY VALUE: a result the host collects with  vmbed --data FILE.
data() {
  echo "VMBED-DATA $1=$2"
}

# Any unexpected non-zero exit (set -e) still names the step it happened in.
vmbed_on_exit() {
  rc=$?
  if [ "$rc" -ne 0 ] && [ -z "${VMBED_FAIL_REPORTED:-}" ]; then
    echo "FAIL: step $VMBED_STEP ($VMBED_STEP_DESC): command failed with status $rc"
  fi
  return "$rc"
}
trap vmbed_on_exit EXIT

# hotplug del|add N: ask vmbed (--hotplug-disk) to unplug or plug again hot-plug disk N
# (0 = the first); returns at once, the device comes or goes a little later.
hotplug() {
  (. /vmbed/run.conf && echo "VMBED-HOTPLUG:$VMBED_NONCE:$1:$2")
}

# arm_kill: with vmbed --kill-after-arm SECS, qemu is SIGKILLed SECS after this line
# reaches the console (a simulated power loss at a chosen point).
arm_kill() {
  (. /vmbed/run.conf && echo "VMBED-ARM:$VMBED_NONCE")
}
