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

// Issue 17 item 5: a field of the wrong JSON type made nlohmann throw
// type_error (SIGABRT for every command). Every handler entry point that reads
// a stored record must return a Status for any type in any field, never throw.
const nlohmann::json kWrongTypes[] = {5,
                                      -1,
                                      1.5,
                                      "x",
                                      true,
                                      nullptr,
                                      nlohmann::json::array({1}),
                                      nlohmann::json::object({{"a", 1}})};

const char* kAllParams[] = {
    "kdf",         "time_cost",    "memory_kib",       "parallelism",
    "salt",        "file_hint",    "sealed",           "bank",
    "pcrs",        "pin",          "startup_key",      "srk",
    "uri",         "module",       "mechanism",        "role",
    "token_label", "token_serial", "encrypted_secret", "iv",
    "certificate", "fingerprint",  "subject",          "not_after",
    "algorithm",   "encapsulation"};

ProtectorRecord PlausibleRecord(const std::string& kind) {
  ProtectorRecord r;
  r.kind = kind;
  r.id = "5d1c2a10-0000-4000-8000-000000000001";
  r.created = "2026-11-23T10:00:00Z";
  r.keyslots = {0};
  const std::string salt(44, 'A');  // base64 of 32 zero bytes, with padding
  r.params = {{"kdf", "argon2id"},
              {"time_cost", 1},
              {"memory_kib", 8192},
              {"parallelism", 1},
              {"salt", salt.substr(0, 43) + "="},
              {"file_hint", "k.BEK"},
              {"sealed", "AAAA"},
              {"bank", "sha256"},
              {"pcrs", {7}},
              {"pin", false},
              {"startup_key", false},
              {"role", "customer"},
              {"token_label", "t"},
              {"token_serial", "s"},
              {"mechanism", "aes-gcm"}};
  r.wrapped_vmk = "AQID";
  return r;
}

TEST(ProtectorHandlerTest, WrongJsonTypesInParamsNeverThrow) {
  Credentials creds;
  creds.secrets.push_back(std::move(SecretBytes::CopyOf("passphrase")).value());
  creds.startup_key_files.push_back("/nonexistent");
  for (const std::string& kind : RegisteredKinds()) {
    const ProtectorHandler* h = FindHandler(kind);
    for (const char* key : kAllParams) {
      for (const auto& wrong : kWrongTypes) {
        ProtectorRecord r = PlausibleRecord(kind);
        r.params[key] = wrong;
        SCOPED_TRACE(kind + " params." + key + " = " + wrong.dump());
        EXPECT_NO_THROW({
          (void)h->Validate(r);
          (void)h->Describe(r);
          (void)h->CanTry(r, creds);
          (void)StringParamOr(r, key);
        });
        r.params.erase(key);
        EXPECT_NO_THROW({
          (void)h->Validate(r);
          (void)h->Describe(r);
        });
      }
    }
    // params itself not an object.
    for (const auto& wrong : kWrongTypes) {
      ProtectorRecord r = PlausibleRecord(kind);
      r.params = wrong;
      EXPECT_NO_THROW({
        EXPECT_FALSE(h->Validate(r).ok()) << kind;
        (void)h->Describe(r);
      });
    }
  }
}

TEST(ProtectorHandlerTest, WrongTypesAreCorruptionNamingTheField) {
  ProtectorRecord p = PlausibleRecord("passphrase");
  p.params["kdf"] = 5;
  Status s = FindHandler("passphrase")->Validate(p);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("\"params.kdf\" must be a string"),
            std::string::npos)
      << s.message();
  for (const auto& hint : {nlohmann::json(5), nlohmann::json::array({1})}) {
    ProtectorRecord k = PlausibleRecord("startup-key");
    k.params["file_hint"] = hint;
    s = FindHandler("startup-key")->Validate(k);
    EXPECT_EQ(s.code(), StatusCode::kCorruption);
    EXPECT_NE(s.message().find("\"params.file_hint\""), std::string::npos)
        << s.message();
    EXPECT_EQ(FindHandler("startup-key")->Describe(k),
              "startup key (unreadable file hint)");
    ProtectorRecord t = PlausibleRecord("tpm");
    t.params["file_hint"] = hint;
    s = FindHandler("tpm")->Validate(t);
    EXPECT_EQ(s.code(), StatusCode::kCorruption);
    EXPECT_NE(s.message().find("\"params.file_hint\""), std::string::npos)
        << s.message();
  }
  ProtectorRecord ok = PlausibleRecord("startup-key");
  EXPECT_TRUE(FindHandler("startup-key")->Validate(ok).ok());
  EXPECT_EQ(FindHandler("startup-key")->Describe(ok),
            "startup key, file k.BEK");
}

TEST(ProtectorRecordTest, WrongTypesInCommonFieldsAreCorruption) {
  const nlohmann::json good =
      nlohmann::json::parse(PlausibleRecord("passphrase").ToTokenJson());
  for (const char* key : {"type", "keyslots", "version", "id", "created",
                          "description", "params", "wrapped_vmk"}) {
    for (const auto& wrong : kWrongTypes) {
      nlohmann::json j = good;
      j[key] = wrong;
      SCOPED_TRACE(std::string(key) + " = " + wrong.dump());
      StatusOr<ProtectorRecord> r = InternalError("not run");
      EXPECT_NO_THROW(r = ProtectorRecord::FromTokenJson(2, j.dump()));
      // Accepted exactly when the value has the field's type ("type" = "x"
      // is not a volmgr token: kUnsupported).
      const std::string k = key;
      const bool right_type =
          k == "params"    ? wrong.is_object()
          : k == "version" ? (wrong.is_number_integer() && wrong >= 0)
          : k == "keyslots"
              ? false
              : wrong.is_string() || (k == "description" && wrong.is_null());
      if (k == "type" && wrong.is_string()) {
        EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
      } else if (right_type) {
        EXPECT_TRUE(r.ok()) << r.status().ToString();
      } else {
        EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
      }
    }
  }
  nlohmann::json j = good;
  j["keyslots"] = {"0", "32"};
  EXPECT_NE(ProtectorRecord::FromTokenJson(2, j.dump())
                .status()
                .message()
                .find("\"keyslots[1]\""),
            std::string::npos);
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
