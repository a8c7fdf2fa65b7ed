#!/usr/bin/env bash
# Every external command the tests call must come from a package that .ci/install
# installs (or from Debian's minimal base), and must be installed here.
#   tools_check.sh SOURCE_DIR
#
# tests/tools.list names each command (or host file, or Python module) and its Debian
# package. This script fails when
#   1. a listed package is neither in .ci/install's list nor part of every Debian
#      system (Priority: required, which `debootstrap --variant=minbase` installs);
#   2. a listed command, file or module is missing here, or does not come from the
#      package the list names (dpkg -S; the package or one it depends on);
#   3. the tests call a command the list does not name. The scan reads every test
#      script (tests/**/*.sh, *.py, CMakeLists.txt, tests/vm/vmbed, .ci/*), the string
#      literals of the unit tests that shell out, and the programs volmgr itself
#      spawns; a word there that names an executable on PATH, or any name given to
#      `require_tools`, `command -v` or a `for tool in ...` loop (installed or not),
#      must be in the list, be a shell builtin, or be in NOT_COMMANDS below (words that
#      happen to name a program but are not calls). Guest scripts (tests/vm/cases/,
#      guest-lib.sh, vmbed's guest init) run under busybox in the VM: their commands
#      must be busybox applets or binaries the bed copies into the guest.
# Exit 0 when all hold; 1 with one line per problem otherwise. Never skips.
set -euo pipefail

if [[ $# -ne 1 || ! -d $1 ]]; then
  echo "usage: $0 SOURCE_DIR" >&2
  exit 2
fi
SRC=$(cd "$1" && pwd)
LIST=$SRC/tests/tools.list
INSTALL=${VOLMGR_CI_INSTALL:-$SRC/.ci/install}

# Words in the scanned files that name a program on PATH but are not calls of it
# (prose in strings, volmgr verbs, option values, variable names).
NOT_COMMANDS=(
  as clear dir file free groups id init install join kvm last link login make man
  more passwd pc reset script service sg shred size ss statfs sum systemd view w wall
  who write yes idle reboot which
  mkfs fsck  # in step names and messages; the scripts run mkfs.ext4, e2fsck
  look prove  # words in messages and comparisons
)

problems=0
problem() {
  echo "FAIL: $*"
  problems=$((problems + 1))
}

command -v dpkg-query >/dev/null || { echo "FAIL: no dpkg-query: this check needs Debian"; exit 1; }

# --- .ci/install's package list --------------------------------------------------------
[[ -r $INSTALL ]] || { echo "FAIL: cannot read $INSTALL"; exit 1; }
mapfile -t ci_packages < <(sed -n '/^packages=(/,/^)/p' "$INSTALL" | sed 's/#.*//' |
  tr -s ' \t' '\n' | grep -vE '^(packages=\(|\)|)$')
((${#ci_packages[@]} > 10)) || { echo "FAIL: no package list found in $INSTALL"; exit 1; }
declare -A in_ci=()
for p in "${ci_packages[@]}"; do in_ci[$p]=1; done

# --- the list ---------------------------------------------------------------------------
[[ -r $LIST ]] || { echo "FAIL: cannot read $LIST"; exit 1; }
declare -A listed=()  # name -> package
while read -r name pkg _; do
  [[ -z $name || $name == \#* ]] && continue
  [[ -n $pkg ]] || { problem "tests/tools.list: '$name' has no package"; continue; }
  [[ -z ${listed[$name]:-} ]] || problem "tests/tools.list: '$name' is listed twice"
  listed[$name]=$pkg
done <"$LIST"

# dpkg owners of paths, looked up in one dpkg -S call: owner_of[PATH]=" pkg pkg".
declare -A owner_of=()
prime_owners() {
  local line path pk
  while IFS= read -r line; do
    [[ $line == diversion* || $line != *": /"* ]] && continue
    path=${line#*: }
    pk=${line%%: *}
    pk=${pk//,/ }
    owner_of[$path]="${owner_of[$path]:-} ${pk//:amd64/}"
  done < <(dpkg -S "$@" 2>/dev/null || true)
}
# The package and its direct dependencies (a metapackage such as python3 ships the
# interpreter through python3-minimal).
# Priority and dependencies of every installed package, from one dpkg-query call.
declare -A priority=() depends=()
while IFS=$'\t' read -r p prio deps; do
  priority[$p]=$prio
  depends[$p]=$deps
done < <(dpkg-query -W -f='${Package}\t${Priority}\t${Depends}, ${Pre-Depends}\n' 2>/dev/null)
family() {
  local d out=$1
  IFS=',|' read -ra d <<<"${depends[$1]:-}"
  for d in "${d[@]}"; do
    d=${d%%(*}
    d=${d//[[:space:]]/}
    out+=" ${d%:any}"
  done
  echo "$out"
}
# The paths a lookup of PATH may find it under: itself, its target, their /usr twins.
variants() {
  local p
  for p in "$1" "$(readlink -f "$1")"; do
    echo "$p"
    if [[ $p == /usr/* ]]; then echo "${p#/usr}"; else echo "/usr$p"; fi
  done
}
# provided_by PKG PATH...: does one of PATHs (in a variant) belong to PKG or a direct
# dependency of PKG?
provided_by() {
  local pkg=$1 path cand o fam
  shift
  fam=" $(family "$pkg") "
  for path in "$@"; do
    while read -r cand; do
      for o in ${owner_of[$cand]:-}; do
        [[ $fam == *" $o "* ]] && return 0
      done
    done < <(variants "$path")
  done
  return 1
}
owners_of() {
  local cand
  while read -r cand; do echo -n "${owner_of[$cand]:-}"; done < <(variants "$1")
}

# Where each listed name is here (empty: missing), then one dpkg -S for all of them.
declare -A where=()
all_paths=()
for name in "${!listed[@]}"; do
  case $name in
    py:*)
      mod=${name#py:}
      if python3 -c "import $mod" 2>/dev/null; then
        where[$name]=$(/usr/bin/python3 -c "import $mod; print($mod.__file__)" 2>/dev/null || true)
        [[ -n ${where[$name]} ]] || where[$name]="(Debian's /usr/bin/python3 cannot import it)"
      fi
      ;;
    /*) [[ -e $name ]] && where[$name]=$name ;;
    *) where[$name]=$(type -a -P "$name" | tr '\n' ' ') ;;
  esac
  for path in ${where[$name]:-}; do
    [[ $path == /* ]] && mapfile -t -O "${#all_paths[@]}" all_paths < <(variants "$path")
  done
done
((${#all_paths[@]})) && prime_owners "${all_paths[@]}"

for name in "${!listed[@]}"; do
  pkg=${listed[$name]}
  # 1. the package is installed by .ci/install or by every Debian system
  if [[ -z ${in_ci[$pkg]:-} ]]; then
    if [[ ${priority[$pkg]:-} != required ]]; then
      problem "the tests use '$name' from package $pkg, which .ci/install does not install" \
        "(add $pkg to its package list)"
      continue
    fi
  fi
  # 2. present here, and from that package
  if [[ -z ${where[$name]:-} ]]; then
    case $name in
      py:*) problem "python3 cannot import ${name#py:} (package $pkg; run ./.ci/install as root)" ;;
      /*) problem "$name is missing (package $pkg; run ./.ci/install as root)" ;;
      *) problem "'$name' is not on PATH (package $pkg; run ./.ci/install as root)" ;;
    esac
    continue
  fi
  # shellcheck disable=SC2086  # where[] holds a list of paths
  provided_by "$pkg" ${where[$name]} || {
    first=${where[$name]%% *}
    problem "'$name' ($first) is not from package $pkg (dpkg -S:$(owners_of "$first"))"
  }
done

# --- 3. scan for commands the list does not name ------------------------------------------
cd "$SRC"
declare -A builtin=() not_cmd=() applet=() guest_bin=()
while read -r w; do builtin[$w]=1; done < <(compgen -b; compgen -k)
for w in "${NOT_COMMANDS[@]}"; do not_cmd[$w]=1; done
if [[ -x /bin/busybox ]]; then
  while read -r w; do applet[$w]=1; done < <(/bin/busybox --list)
else
  problem "/bin/busybox is missing (package busybox-static; run ./.ci/install as root)"
fi

# Host files the VM bed copies into the guest: tests/vm/vmbed's BASE_BINS and the
# absolute BINS/FILES of tests/vm/CMakeLists.txt. Each must be listed (by path).
mapfile -t vm_paths < <({
  sed -n '/^BASE_BINS=(/,/^)/p' tests/vm/vmbed
  sed 's/#.*//' tests/vm/CMakeLists.txt
} | grep -oE '(^|[[:space:]])/(usr/)?(s?bin|lib)/[^[:space:]:)]+' | tr -d ' \t' | sort -u)
for f in "${vm_paths[@]}"; do
  guest_bin[${f##*/}]=1
  [[ -n ${listed[$f]:-} ]] || problem "the VM bed copies $f into the guest, but tests/tools.list does not list it"
done
# vmbed's guest aliases and tpm2-tools' tpm2_* links.
while read -r w; do guest_bin[$w]=1; done < <(
  sed -n '/^BASE_LINKS=(/,/^)/p' tests/vm/vmbed | grep -oE '[a-z0-9.]+:' | tr -d :
)
[[ -n ${guest_bin[tpm2]:-} ]] && while read -r w; do guest_bin[$w]=1; done < <(
  find /usr/bin -maxdepth 1 -lname tpm2 -printf '%f\n')

# Shell-like text without comments and without embedded Python (<<'PY' ... PY).
shell_text() {
  awk '
    inpy { if ($0 ~ /^PY$/) inpy = 0; next }
    /<<.?PY.?([^A-Za-z]|$)/ { inpy = 1 }
    { sub(/^[[:space:]]*#.*/, ""); sub(/[[:space:]]#.*/, ""); print FILENAME ":" FNR ": " $0 }
  ' "$@"
}
# Words of "FILE:LINE: text" lines, as "word FILE:LINE".
words() { awk '{ loc = $1; $1 = ""; n = split($0, w, /[^A-Za-z0-9_.+-]+/)
                 for (i = 1; i <= n; i++) if (w[i] ~ /^[A-Za-z_][A-Za-z0-9_.+-]*$/) print w[i], loc }'; }
# Names given to require_tools / command -v / for tool in: candidates even if absent.
declared() {
  shell_text "$@" | sed 's/^[^ ]* //' |
    grep -oE '(require_tools|command -v|for tool in)[[:space:]]+[^;|&)]*' |
    sed -E 's/^(require_tools|command -v|for tool in)//; s/>.*//' | tr -s ' \t' '\n' |
    grep -E '^[A-Za-z_][A-Za-z0-9_.+-]*$' | grep -vE '^(do|then)$' || true
}

mapfile -t host_files < <({
  find tests -type f \( -name '*.sh' -o -name 'CMakeLists.txt' -o -name '*.cmake' \) \
    ! -path 'tests/vm/cases/*' ! -name guest-lib.sh ! -name tools_check.sh
  echo tests/vm/vmbed
  echo .ci/run
  echo .ci/install
} | sort)
mapfile -t guest_files < <(find tests/vm/cases -type f -name '*.sh'; echo tests/vm/guest-lib.sh)

vmbed_guest_init() { awk '/<<.EOF_INIT/ { on = 1; next } /^EOF_INIT$/ { on = 0 } on' tests/vm/vmbed; }
vmbed_host() { awk '/<<.EOF_INIT/ { on = 1 } !on; /^EOF_INIT$/ { on = 0 }' tests/vm/vmbed; }
# .ci/install without its package list (package names are not calls).
ci_install_text() { awk '/^packages=\(/ { on = 1 } !on; on && /^\)/ { on = 0 }' "$INSTALL"; }

host_words() {
  local f
  for f in "${host_files[@]}"; do
    if [[ $f == tests/vm/vmbed ]]; then
      vmbed_host >"$TMPD/vmbed.host"
      shell_text "$TMPD/vmbed.host" | sed "s|^$TMPD/vmbed.host|tests/vm/vmbed(host)|"
    elif [[ $f == .ci/install ]]; then
      ci_install_text >"$TMPD/install"
      shell_text "$TMPD/install" | sed "s|^$TMPD/install|.ci/install|"
    else
      shell_text "$f"
    fi
  done | words
  # Python: only what it hands to a shell or exec.
  find tests -name '*.py' -exec grep -nHE 'subprocess|os\.system|os\.exec|Popen' {} + |
    sed -E 's/^([^:]+:[0-9]+):/\1: /' | words || true
  # Unit tests that shell out: words of their string literals.
  local cc
  while read -r cc; do
    grep -noE '"([^"\\]|\\.)*"' "$cc" | sed "s|^|$cc:|; s|:\\([0-9]*\\):|:\\1: |" | words
  done < <(grep -rlE 'std::system|popen|posix_spawn|RunTool|RawTool|exec[lv]p?\(' tests \
    --include='*.cc' --include='*.h')
  # Programs volmgr itself runs during the tests.
  grep -rnoE '(RunTool\(\{|exec[lv]p?\(|posix_spawnp?\([^,]*, )"[^"]+"|"/(usr/)?s?bin/[^"]+"' volmgr |
    sed -E 's/^([^:]+:[0-9]+):/\1: /; s|"/(usr/)?s?bin/|"|' | words
  # Declared names (a tool a script demands must be listed even where it is missing).
  for f in "${host_files[@]}"; do
    declared "$f" | sed "s|\$| $f:declared|"
  done
}
guest_words() {
  shell_text "${guest_files[@]}" | words
  vmbed_guest_init >"$TMPD/vmbed.guest"
  shell_text "$TMPD/vmbed.guest" | sed "s|^$TMPD/vmbed.guest|tests/vm/vmbed(guest init)|" | words
}

TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT
declare -A reported=() is_exe=()
exe() {  # cached: is $1 a program on PATH?
  if [[ -z ${is_exe[$1]:-} ]]; then
    if type -P "$1" >/dev/null; then is_exe[$1]=y; else is_exe[$1]=n; fi
  fi
  [[ ${is_exe[$1]} == y ]]
}
while read -r w loc; do
  [[ -n ${listed[$w]:-} || -n ${builtin[$w]:-} || -n ${not_cmd[$w]:-} || -n ${reported[$w]:-} ]] && continue
  if [[ $loc == *:declared ]] || exe "$w"; then
    reported[$w]=1
    problem "the tests call '$w' (${loc%:declared}), which tests/tools.list does not list:" \
      "add '$w PACKAGE' there and PACKAGE to .ci/install (or '$w' to NOT_COMMANDS in $0 if it is no call)"
  fi
done < <(host_words)
while read -r w loc; do
  [[ -n ${applet[$w]:-} || -n ${guest_bin[$w]:-} || -n ${builtin[$w]:-} || -n ${not_cmd[$w]:-} ]] && continue
  [[ -n ${reported["guest:$w"]:-} ]] && continue
  if exe "$w"; then
    reported["guest:$w"]=1
    problem "the guest script calls '$w' ($loc), which is neither a busybox applet nor a binary" \
      "the VM bed copies (BASE_BINS in tests/vm/vmbed, BINS in tests/vm/CMakeLists.txt)"
  fi
done < <(guest_words)

if ((problems)); then
  echo "tools_check: $problems problem(s); .ci/install is $INSTALL"
  exit 1
fi
echo "tools_check: ${#listed[@]} commands, files and modules, each from a package .ci/install" \
  "or every Debian system provides; no unlisted command in the tests"
