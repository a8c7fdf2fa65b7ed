// The Customer Key policy of a volume (Microsoft 365 Customer Key's rules,
// brought to volumes): customers hold their own root keys in HSMs.
//
//  * Customer keys are pkcs11 protectors of role "customer". A volume under
//    the policy has two of them, in two different tokens (HSMs); either one
//    unlocks, so losing one HSM loses no data.
//  * The availability key is a pkcs11 protector of role "availability": a
//    separate root held by the operator, used only by volmgr-recover (never
//    by `volmgr open`), to recover the data when both customer keys are
//    lost.
//  * Data recovery agents are cert protectors, used by volmgr-recover
//    --agent-key.
//
// `revoke` removes a customer key; `purge` destroys every protector and
// keyslot (docs/SECURITY.md "Data purge").
#ifndef VOLMGR_PROTECTORS_CUSTOMER_KEY_POLICY_H_
#define VOLMGR_PROTECTORS_CUSTOMER_KEY_POLICY_H_

#include <string>
#include <string_view>
#include <vector>

#include "volmgr/base/status.h"
#include "volmgr/protectors/protector.h"

namespace volmgr::protectors {

inline constexpr std::string_view kRoleCustomer = "customer";
inline constexpr std::string_view kRoleAvailability = "availability";
inline constexpr size_t kMaxCustomerKeys = 2;

struct CustomerKeyPolicy {
  std::vector<std::string> customer_keys;      // protector IDs
  std::vector<std::string> customer_tokens;    // distinct token identities
  std::vector<std::string> availability_keys;  // protector IDs
  std::vector<std::string> agents;             // cert protector IDs

  // True when the volume has any customer key, availability key or agent.
  bool applies() const {
    return !customer_keys.empty() || !availability_keys.empty() ||
           !agents.empty();
  }
  // Two customer keys in two different tokens.
  bool redundant() const {
    return customer_keys.size() >= 2 && customer_tokens.size() >= 2;
  }
  // One line for `status`: "2 customer keys in 2 tokens (either unlocks);
  // availability key: 1; data recovery agents: 0", or what is missing.
  std::string Summary() const;
};

// "label/serial": what makes two tokens different.
std::string TokenIdentity(std::string_view label, std::string_view serial);

CustomerKeyPolicy EvaluatePolicy(const std::vector<ProtectorRecord>& all);

// Checks adding a customer key in the token `token_identity`: refused
// (kFailedPrecondition) when a customer key is already in that token, or
// when the volume already has kMaxCustomerKeys.
Status CheckNewCustomerKey(const std::vector<ProtectorRecord>& existing,
                           const std::string& token_identity);

// The identity of the token `uri` names (defined in pkcs11.cc): loads the
// module and finds the token; kUnavailable when it is absent.
StatusOr<std::string> Pkcs11TokenIdentity(const std::string& uri,
                                          const std::string& module);

}  // namespace volmgr::protectors

#endif  // VOLMGR_PROTECTORS_CUSTOMER_KEY_POLICY_H_
