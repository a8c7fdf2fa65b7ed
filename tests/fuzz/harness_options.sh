# Sourced by smoke.sh and campaign.sh: libFuzzer options per harness.
# fuzz_opts NAME -> prints the options (max_len fits the corpus objects).
fuzz_opts() {
  case $1 in
    header_check) echo "-max_len=65536" ;;     # both 16 KiB header copies
    volume_tokens) echo "-max_len=12288" ;;    # the LUKS2 JSON area
    key_package | sealed_blob | protector_token) echo "-max_len=16384" ;;
    file_container) echo "-max_len=16384" ;;
    *) echo "-max_len=4096" ;;
  esac
}
# Sanitizer settings for every run: stop at the first report, with stacks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
