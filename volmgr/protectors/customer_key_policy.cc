#include "volmgr/protectors/customer_key_policy.h"

#include <algorithm>

namespace volmgr::protectors {
namespace {

std::string TokenOf(const ProtectorRecord& r) {
  return TokenIdentity(StringParamOr(r, "token_label"),
                       StringParamOr(r, "token_serial"));
}

std::string Plural(size_t n, const std::string& what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

}  // namespace

std::string TokenIdentity(std::string_view label, std::string_view serial) {
  return std::string(label) + "/" + std::string(serial);
}

CustomerKeyPolicy EvaluatePolicy(const std::vector<ProtectorRecord>& all) {
  CustomerKeyPolicy p;
  for (const auto& r : all) {
    if (r.kind == "cert") p.agents.push_back(r.id);
    if (r.kind != "pkcs11") continue;
    const std::string role = StringParamOr(r, "role");
    if (role == kRoleAvailability) {
      p.availability_keys.push_back(r.id);
    } else if (role == kRoleCustomer) {
      p.customer_keys.push_back(r.id);
      const std::string t = TokenOf(r);
      if (std::find(p.customer_tokens.begin(), p.customer_tokens.end(), t) ==
          p.customer_tokens.end()) {
        p.customer_tokens.push_back(t);
      }
    }
  }
  return p;
}

std::string CustomerKeyPolicy::Summary() const {
  std::string s = Plural(customer_keys.size(), "customer key") + " in " +
                  Plural(customer_tokens.size(), "token");
  if (redundant()) {
    s += " (either unlocks)";
  } else if (!customer_keys.empty()) {
    s += " (not redundant: add a second customer key in another HSM)";
  }
  s += "; availability key: " +
       std::string(availability_keys.empty() ? "none" : "yes") +
       "; data recovery agents: " + std::to_string(agents.size());
  return s;
}

Status CheckNewCustomerKey(const std::vector<ProtectorRecord>& existing,
                           const std::string& token_identity) {
  CustomerKeyPolicy p = EvaluatePolicy(existing);
  if (p.customer_keys.size() >= kMaxCustomerKeys) {
    return FailedPreconditionError(
        "the volume already has " + std::to_string(kMaxCustomerKeys) +
        " customer keys; revoke one before adding another");
  }
  for (const auto& r : existing) {
    if (r.kind == "pkcs11" && StringParamOr(r, "role") == kRoleCustomer &&
        TokenOf(r) == token_identity) {
      return FailedPreconditionError(
          "customer key " + r.id.substr(0, 8) + " is already in token " +
          token_identity +
          "; the two customer keys must be in different HSMs/tokens");
    }
  }
  return Status::Ok();
}

}  // namespace volmgr::protectors
