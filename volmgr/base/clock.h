// Wall-clock timestamps as written into volmgr metadata.
#ifndef VOLMGR_BASE_CLOCK_H_
#define VOLMGR_BASE_CLOCK_H_

#include <string>

namespace volmgr {

// The current time as RFC 3339 UTC with second precision,
// e.g. "2026-11-23T10:00:00Z" (the "created" field of every token).
std::string NowRfc3339Utc();

}  // namespace volmgr

#endif  // VOLMGR_BASE_CLOCK_H_
