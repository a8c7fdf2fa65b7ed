// A GoogleTest fixture base that runs one private swtpm per test suite.
//
// Derive a fixture from SharedSwtpmTest; swtpm() is the running TPM, started
// in SetUpTestSuite and stopped in TearDownTestSuite. Every test fails at
// SetUp (not crashes) when swtpm could not be started.
#ifndef VOLMGR_TESTS_UNIT_TPM_SWTPM_FIXTURE_H_
#define VOLMGR_TESTS_UNIT_TPM_SWTPM_FIXTURE_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "tests/unit/tpm/swtpm_harness.h"

namespace volmgr::tpm::testing {

class SharedSwtpmTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string err;
    swtpm_ = Swtpm::Start(&err);
    ASSERT_NE(swtpm_, nullptr) << err;
  }
  static void TearDownTestSuite() { swtpm_.reset(); }

  void SetUp() override {
    ASSERT_NE(swtpm_, nullptr) << "swtpm is not running";
  }

  static Swtpm& swtpm() { return *swtpm_; }

  static inline std::unique_ptr<Swtpm> swtpm_;
};

}  // namespace volmgr::tpm::testing

#endif  // VOLMGR_TESTS_UNIT_TPM_SWTPM_FIXTURE_H_
