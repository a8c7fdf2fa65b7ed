// Text from a disk or a file made safe to print on a terminal.
//
// A LUKS2 label, a token's description or file hint, a BitLocker volume's
// name, an error message that quotes header content: whoever wrote the disk
// chose those bytes. Printed raw, `\e]0;...\a` retitles the terminal,
// `\e[2J` clears it, a carriage return overwrites what was printed before.
// Text (non-JSON) output passes every such string through TerminalSafe();
// JSON output needs nothing (the serialiser escapes control characters).
//
// Kept as they are: printable ASCII (0x20-0x7e) and well-formed UTF-8 of
// printable code points. Written as `\xHH`: every other byte -- C0 controls,
// DEL, bytes of malformed or overlong UTF-8, C1 controls (U+0080-U+009F,
// which some terminals obey as CSI/OSC), and the invisible formatting and
// bidirectional controls (U+200B-U+200F, U+2028-U+202E, U+2060-U+206F,
// U+FEFF, U+FFF9-U+FFFB) that can make text read as something else. A
// backslash becomes `\\`, so an escaped string is never ambiguous. A
// newline is escaped too unless `keep_newlines` (multi-line messages that
// volmgr wrote itself).
#ifndef VOLMGR_BASE_TERMINAL_TEXT_H_
#define VOLMGR_BASE_TERMINAL_TEXT_H_

#include <string>
#include <string_view>

namespace volmgr {

std::string TerminalSafe(std::string_view text, bool keep_newlines = false);

}  // namespace volmgr

#endif  // VOLMGR_BASE_TERMINAL_TEXT_H_
