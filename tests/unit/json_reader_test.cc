#include "volmgr/base/json_reader.h"

#include <gtest/gtest.h>

namespace volmgr {
namespace {

using nlohmann::json;

json Sample() {
  return json::parse(R"({"s": "text", "b": true, "u": 7, "neg": -3,
                         "f": 1.5, "null": null, "arr": [1, "x"],
                         "obj": {"kdf": 5, "name": "argon2id"}})");
}

TEST(JsonReaderTest, ReadsFieldsOfTheRightType) {
  json j = Sample();
  JsonReader r(j, "token 3 (volmgr-x)");
  EXPECT_EQ(*r.String("s"), "text");
  EXPECT_TRUE(*r.Bool("b"));
  EXPECT_EQ(*r.Unsigned("u"), 7u);
  EXPECT_EQ(*r.Integer("neg", -10, 10), -3);
  EXPECT_EQ(*r.Integer("u", -10, 10), 7);
  EXPECT_EQ((*r.Array("arr"))->size(), 2u);
  EXPECT_EQ(*r.Object("obj")->String("name"), "argon2id");
  EXPECT_TRUE(r.Has("null"));
  EXPECT_FALSE(r.Has("absent"));
}

TEST(JsonReaderTest, WrongTypeNamesTheFieldAndBothTypes) {
  json j = Sample();
  JsonReader r(j, "token 3 (volmgr-x)");
  auto s = r.String("u");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(s.status().message(),
            "token 3 (volmgr-x): field \"u\" must be a string, not an "
            "unsigned integer");
  EXPECT_EQ(r.Bool("s").status().message(),
            "token 3 (volmgr-x): field \"s\" must be a boolean, not a string");
  EXPECT_NE(r.Unsigned("neg").status().message().find("a negative integer"),
            std::string::npos);
  EXPECT_NE(r.Unsigned("f").status().message().find("a fractional number"),
            std::string::npos);
  EXPECT_NE(r.Object("arr").status().message().find("not an array"),
            std::string::npos);
  EXPECT_NE(r.Array("obj").status().message().find("not an object"),
            std::string::npos);
}

TEST(JsonReaderTest, NestedPathsAppearInMessages) {
  json j = Sample();
  JsonReader r(j, "token 3 (volmgr-passphrase)");
  auto params = r.Object("obj");
  ASSERT_TRUE(params.ok());
  EXPECT_EQ(params->String("kdf").status().message(),
            "token 3 (volmgr-passphrase): field \"obj.kdf\" must be a "
            "string, not an unsigned integer");
  EXPECT_EQ(params->ArrayElementError("pcrs", 2, "is not a PCR").message(),
            "token 3 (volmgr-passphrase): field \"obj.pcrs[2]\" is not a PCR");
}

TEST(JsonReaderTest, MissingAndNullRequiredFieldsFail) {
  json j = Sample();
  JsonReader r(j, "state file");
  EXPECT_EQ(r.String("absent").status().message(),
            "state file: field \"absent\" is missing (it must be a string)");
  EXPECT_EQ(r.Unsigned("null").status().code(), StatusCode::kCorruption);
}

TEST(JsonReaderTest, OptionalFieldsFallBackOnlyWhenAbsent) {
  json j = Sample();
  JsonReader r(j, "t");
  EXPECT_EQ(*r.OptionalString("absent", "dflt"), "dflt");
  EXPECT_EQ(*r.OptionalString("null", "dflt"), "dflt");
  EXPECT_EQ(*r.OptionalString("s"), "text");
  EXPECT_FALSE(r.OptionalString("u").ok());  // present, wrong type
  EXPECT_FALSE(r.OptionalString("arr").ok());
  EXPECT_TRUE(*r.OptionalBool("absent", true));
  EXPECT_FALSE(r.OptionalBool("u", false).ok());
  EXPECT_EQ(*r.OptionalUnsigned("absent", 9), 9u);
  EXPECT_FALSE(r.OptionalUnsigned("s", 9).ok());
}

TEST(JsonReaderTest, RangesAreEnforced) {
  json j = json::parse(R"({"big": 18446744073709551615, "slot": 32,
                           "small": -9223372036854775808})");
  JsonReader r(j, "t");
  EXPECT_EQ(*r.Unsigned("big"), UINT64_MAX);
  EXPECT_FALSE(r.Unsigned("big", UINT32_MAX).ok());
  EXPECT_FALSE(r.Integer("big", 0, INT64_MAX).ok());
  EXPECT_FALSE(r.Integer("slot", 0, 31).ok());
  EXPECT_EQ(*r.Integer("slot", 0, 32), 32);
  EXPECT_FALSE(r.Integer("small", -1, 1).ok());
  EXPECT_EQ(*r.Integer("small", INT64_MIN, 0), INT64_MIN);
}

TEST(JsonReaderTest, NonObjectsNeverThrow) {
  for (const char* text : {"[1,2]", "5", "\"s\"", "null", "true"}) {
    json j = json::parse(text);
    JsonReader r(j, "t");
    EXPECT_FALSE(r.CheckObject().ok()) << text;
    EXPECT_FALSE(r.String("a").ok()) << text;
    EXPECT_FALSE(r.OptionalString("a").ok()) << text;
    EXPECT_FALSE(r.OptionalUnsigned("a", 1).ok()) << text;
    EXPECT_FALSE(r.Has("a")) << text;
  }
}

TEST(JsonReaderTest, ParseObjectRejectsGarbageAndNonObjects) {
  json out = json::object({{"kept", 1}});
  EXPECT_EQ(JsonReader::ParseObject("{", "token 4", out).message(),
            "token 4 is not valid JSON");
  EXPECT_EQ(JsonReader::ParseObject("[1]", "token 4", out).message(),
            "token 4 is not a JSON object (it is an array)");
  EXPECT_EQ(out, json::object({{"kept", 1}}));
  ASSERT_TRUE(JsonReader::ParseObject(R"({"a": "b"})", "token 4", out).ok());
  EXPECT_EQ(out["a"], "b");
}

}  // namespace
}  // namespace volmgr
