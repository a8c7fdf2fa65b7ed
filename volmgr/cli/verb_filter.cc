#include "volmgr/cli/verb_filter.h"

#include <algorithm>

namespace volmgr::cli {

VerbFilter::VerbFilter(int argc, char** argv,
                       std::span<const std::string_view> known) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.empty() || arg.front() == '-') continue;
    if (std::find(known.begin(), known.end(), arg) != known.end()) {
      selected_ = std::string(arg);
    }
    return;  // the first positional argument decides, known or not
  }
}

bool VerbFilter::operator()(std::string_view verb) const {
  return selected_.empty() || selected_ == verb;
}

bool VerbFilter::operator()(
    std::initializer_list<std::string_view> verbs) const {
  return std::any_of(verbs.begin(), verbs.end(),
                     [this](std::string_view v) { return (*this)(v); });
}

}  // namespace volmgr::cli
