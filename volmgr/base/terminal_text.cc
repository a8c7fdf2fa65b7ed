#include "volmgr/base/terminal_text.h"

#include <cstdint>

namespace volmgr {
namespace {

// Code points that are valid but must not reach a terminal unescaped.
bool InvisibleOrControl(uint32_t cp) {
  return cp < 0xa0 ||                       // C0, DEL, C1
         (cp >= 0x200b && cp <= 0x200f) ||  // zero-width, LRM/RLM
         (cp >= 0x2028 && cp <= 0x202e) ||  // separators, bidi embeddings
         (cp >= 0x2060 && cp <= 0x206f) ||  // word joiner, bidi isolates
         cp == 0xfeff ||                    // zero-width no-break space
         (cp >= 0xfff9 && cp <= 0xfffb);    // interlinear annotation
}

// The length of the well-formed UTF-8 sequence at `s[i]` (2..4), with its
// code point in `cp`; 0 if the bytes there are not one (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF).
size_t Utf8Sequence(std::string_view s, size_t i, uint32_t& cp) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  const uint8_t lead = b(0);
  size_t n;
  uint32_t min;
  if (lead >= 0xc2 && lead <= 0xdf) {
    n = 2, cp = lead & 0x1f, min = 0x80;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    n = 3, cp = lead & 0x0f, min = 0x800;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    n = 4, cp = lead & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

void AppendHex(std::string& out, uint8_t byte) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\x";
  out += kHex[byte >> 4];
  out += kHex[byte & 0x0f];
}

}  // namespace

std::string TerminalSafe(std::string_view text, bool keep_newlines) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<uint8_t>(text[i]);
    if (c == '\\') {
      out += "\\\\";
      ++i;
    } else if ((c >= 0x20 && c < 0x7f) || (c == '\n' && keep_newlines)) {
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x80) {
      AppendHex(out, c);
      ++i;
    } else {
      uint32_t cp = 0;
      const size_t n = Utf8Sequence(text, i, cp);
      if (n == 0 || InvisibleOrControl(cp)) {
        // Byte by byte: a malformed sequence's next byte may start a valid
        // one.
        for (size_t k = 0; k < (n == 0 ? 1 : n); ++k) {
          AppendHex(out, static_cast<uint8_t>(text[i + k]));
        }
        i += n == 0 ? 1 : n;
      } else {
        out.append(text.substr(i, n));
        i += n;
      }
    }
  }
  return out;
}

}  // namespace volmgr
