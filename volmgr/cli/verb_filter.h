// VerbFilter: which top-level verb a command line names, so that a CLI
// builds only that verb's options.
//
// The verb is the first argument after the program name that does not start
// with '-'. If it is one of the known verbs, only that verb is wanted; if
// there is none (`volmgr --help`, `volmgr --version`) or it is not a known
// verb (a typo, or the value of a global option), every verb is wanted, so
// help text and "not expected" errors stay exactly what CLI11 prints with
// the whole command tree.
//
// Thread-safety: immutable after construction.
#ifndef VOLMGR_CLI_VERB_FILTER_H_
#define VOLMGR_CLI_VERB_FILTER_H_

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace volmgr::cli {

class VerbFilter {
 public:
  // REQUIRES: argv[0..argc) are valid strings; `known` lists every
  // top-level verb of the program.
  VerbFilter(int argc, char** argv, std::span<const std::string_view> known);

  // True if `verb` is to be built.
  bool operator()(std::string_view verb) const;
  // True if any of `verbs` is to be built (a registration function that
  // adds several verbs).
  bool operator()(std::initializer_list<std::string_view> verbs) const;

  // The selected verb, or "" when every verb is wanted.
  const std::string& selected() const { return selected_; }

 private:
  std::string selected_;
};

}  // namespace volmgr::cli

#endif  // VOLMGR_CLI_VERB_FILTER_H_
