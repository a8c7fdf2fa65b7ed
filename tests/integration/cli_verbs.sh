#!/bin/bash
# volmgr integration: the command tree is the same whichever verb is named.
#
# volmgr builds only the options of the verb on its command line
# (volmgr/cli/verb_filter.h). This checks that every verb `volmgr --help`
# lists still parses and shows its own help when named alone, that an
# unknown verb and a global flag still get the whole tree's answers, and
# that a verb's options are refused under another verb.
#
# Usage: cli_verbs.sh PATH_TO_VOLMGR
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$(realpath "$0")")/lib.sh"

step "1: volmgr --help lists the verbs"
expect_vm 0 --help
verbs=$(out | awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { exit }')
[[ $(wc -w <<<"$verbs") -ge 18 ]] || fail "expected at least 18 verbs, got: $verbs"

step "2: every verb, named alone, shows its own help"
for v in $verbs; do
  expect_vm 0 "$v" --help
  out | head -3 | grep -q "Usage: .* $v" || fail "volmgr $v --help does not show $v's usage"
done

step "3: sub-verbs still reachable (protector add, conversion status, files init)"
expect_vm 0 protector add --help
has "--pcrs"
expect_vm 0 conversion status --help
expect_vm 0 files init --help

step "4: an unknown verb is a usage error (exit 1), as with the whole tree"
expect_vm 1 frobnicate /dev/null
has "subcommand is required"

step "5: an option of another verb is refused"
expect_vm 1 close x --reboot-count 3
has "reboot-count"

step "6: --version works"
expect_vm 0 --version
has "volmgr"

finish
