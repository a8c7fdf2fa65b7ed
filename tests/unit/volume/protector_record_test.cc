#include <gtest/gtest.h>

#include "volmgr/protectors/protector.h"

namespace volmgr::protectors {
namespace {

TEST(ProtectorRegistryTest, EveryBuiltInKindIsRegistered) {
  // Catches a link setup that drops the self-registering handler objects.
  for (const char* kind : {"passphrase", "recovery-password", "startup-key"}) {
    const ProtectorHandler* h = FindHandler(kind);
    ASSERT_NE(h, nullptr) << kind;
    EXPECT_EQ(h->kind(), kind);
    EXPECT_GE(h->version(), 1);
  }
  EXPECT_EQ(FindHandler("quantum"), nullptr);
}

TEST(ProtectorRecordTest, TokenJsonRoundTrips) {
  ProtectorRecord r;
  r.kind = "passphrase";
  r.version = 1;
  r.id = "5d1c2a10-0000-4000-8000-000000000001";
  r.created = "2026-11-23T10:00:00Z";
  r.description = "laptop";
  r.keyslots = {0};
  r.params = {{"salt", "AAAA"}};
  r.wrapped_vmk = "AQID";
  auto back = ProtectorRecord::FromTokenJson(4, r.ToTokenJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->token_id, 4);
  EXPECT_EQ(back->kind, r.kind);
  EXPECT_EQ(back->id, r.id);
  EXPECT_EQ(back->keyslots, r.keyslots);
  EXPECT_EQ(back->params, r.params);
  EXPECT_EQ(back->wrapped_vmk, r.wrapped_vmk);
  EXPECT_NE(r.ToTokenJson().find("\"type\":\"volmgr-passphrase\""),
            std::string::npos);
}

TEST(ProtectorRecordTest, MalformedTokensAreCorruptionNotCrashes) {
  const char* evil[] = {
      "",
      "{",
      "[]",
      "{\"type\":5}",
      "{\"type\":\"volmgr-passphrase\"}",
      R"({"type":"volmgr-passphrase","keyslots":["x"],"version":1,"id":"a",
          "created":"c","params":{},"wrapped_vmk":"w"})",
      R"({"type":"volmgr-passphrase","keyslots":[],"version":"1","id":"a",
          "created":"c","params":{},"wrapped_vmk":"w"})",
      R"({"type":"volmgr-passphrase","keyslots":[],"version":1,"id":"a",
          "created":"c","params":[],"wrapped_vmk":"w"})",
  };
  for (const char* j : evil) {
    auto r = ProtectorRecord::FromTokenJson(0, j);
    ASSERT_FALSE(r.ok()) << j;
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << j;
  }
  auto foreign = ProtectorRecord::FromTokenJson(
      0, R"({"type":"systemd-tpm2","keyslots":["1"]})");
  EXPECT_EQ(foreign.status().code(), StatusCode::kUnsupported);
}

TEST(Base64Test, RoundTripsAllLengthsAndRejectsGarbage) {
  for (size_t n = 0; n < 40; ++n) {
    std::vector<uint8_t> in(n);
    for (size_t i = 0; i < n; ++i) in[i] = static_cast<uint8_t>(i * 37 + n);
    auto out = FromBase64(ToBase64(in));
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(*out, in) << n;
  }
  EXPECT_FALSE(FromBase64("abc").ok());
  EXPECT_FALSE(FromBase64("ab!d").ok());
}

}  // namespace
}  // namespace volmgr::protectors
