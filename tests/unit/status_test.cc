#include "volmgr/base/status.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <set>

namespace volmgr {
namespace {

StatusOr<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd: " + std::to_string(x));
  return x / 2;
}

StatusOr<int> Quarter(int x) {
  VOLMGR_ASSIGN_OR_RETURN(int h, Half(x));
  VOLMGR_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(ExitCodeFor(s.code()), 0);
}

TEST(StatusTest, AssignOrReturnPropagatesFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  StatusOr<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "odd: 3");
}

TEST(StatusTest, StatusOrFromOkStatusBecomesInternal) {
  StatusOr<int> r(Status::Ok());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

TEST(StatusTest, StatusOrHoldsMoveOnlyValues) {
  StatusOr<std::unique_ptr<int>> r(std::make_unique<int>(7));
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(StatusTest, ErrnoMappingKeepsForeignCode) {
  Status s = ErrnoToStatus(ENOENT, "open /dev/sdz");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.foreign().source, ForeignSource::kErrno);
  EXPECT_EQ(s.foreign().value, ENOENT);
  EXPECT_NE(s.message().find("open /dev/sdz: No such file"), std::string::npos);
  EXPECT_EQ(ErrnoToStatus(EBUSY, "x").code(), StatusCode::kBusy);
  EXPECT_EQ(ErrnoToStatus(EIO, "x").code(), StatusCode::kIoError);
}

TEST(StatusTest, WithContextPrefixesMessageAndKeepsCode) {
  Status s = AuthFailedError("no keyslot matched").WithContext("open vol");
  EXPECT_EQ(s.code(), StatusCode::kAuthFailed);
  EXPECT_EQ(s.message(), "open vol: no keyslot matched");
  EXPECT_EQ(s.ToString(), "AUTH_FAILED: open vol: no keyslot matched");
}

TEST(StatusTest, ExitCodesAreDistinctPerCode) {
  std::set<int> seen;
  for (int c = 0; c <= static_cast<int>(StatusCode::kInternal); ++c) {
    EXPECT_TRUE(seen.insert(ExitCodeFor(static_cast<StatusCode>(c))).second)
        << "duplicate exit code for " << c;
  }
}

}  // namespace
}  // namespace volmgr
