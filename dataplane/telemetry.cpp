// dataplane/telemetry: see telemetry.h.
#include "dataplane/telemetry.h"

#include <rte_telemetry.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>

namespace sluice::dataplane {
namespace {

// One handler for every registered command: the Telemetry object alive now, or none.
std::mutex g_mutex;
Telemetry::Handler g_handler;
std::set<std::string> g_registered;  // DPDK keeps commands for the process's life

std::string tel_name(const std::string& name) {
  std::string out = name.substr(0, RTE_TEL_MAX_STRING_LEN - 1);
  for (char& c : out)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '/')) c = '_';
  return out;
}

std::string tel_string(const std::string& s) { return s.substr(0, RTE_TEL_MAX_STRING_LEN - 1); }

// A scalar into a dictionary. false: not a scalar.
bool add_scalar(rte_tel_data* d, const std::string& name, const Telemetry::Json& v) {
  const std::string n = tel_name(name);
  if (v.is_number_unsigned()) return rte_tel_data_add_dict_u64(d, n.c_str(), v.get<uint64_t>()), true;
  if (v.is_number_integer()) return rte_tel_data_add_dict_int(d, n.c_str(), static_cast<int>(v.get<int64_t>())), true;
  if (v.is_boolean()) return rte_tel_data_add_dict_u64(d, n.c_str(), v.get<bool>() ? 1 : 0), true;
  if (v.is_number()) return rte_tel_data_add_dict_string(d, n.c_str(), tel_string(v.dump()).c_str()), true;
  if (v.is_string()) return rte_tel_data_add_dict_string(d, n.c_str(), tel_string(v.get<std::string>()).c_str()), true;
  return false;
}

// An array of numbers (u64) or of anything else as strings, into a new container.
rte_tel_data* array_of(const Telemetry::Json& a) {
  rte_tel_data* t = rte_tel_data_alloc();
  if (!t) return nullptr;
  bool numbers = true;
  for (const auto& v : a) numbers = numbers && v.is_number_unsigned();
  rte_tel_data_start_array(t, numbers ? RTE_TEL_U64_VAL : RTE_TEL_STRING_VAL);
  std::size_t n = 0;
  for (const auto& v : a) {
    if (++n > RTE_TEL_MAX_ARRAY_ENTRIES) break;
    if (numbers)
      rte_tel_data_add_array_u64(t, v.get<uint64_t>());
    else
      rte_tel_data_add_array_string(t, tel_string(v.is_string() ? v.get<std::string>() : v.dump()).c_str());
  }
  return t;
}

void fill_dict(rte_tel_data* d, const Telemetry::Json& j, bool nested) {
  rte_tel_data_start_dict(d);
  std::size_t n = 0;
  for (const auto& [key, v] : j.items()) {
    if (++n > RTE_TEL_MAX_DICT_ENTRIES) break;
    if (add_scalar(d, key, v)) continue;
    if (nested) continue;  // a third level: DPDK cannot send it
    rte_tel_data* inner = nullptr;
    if (v.is_object()) {
      inner = rte_tel_data_alloc();
      if (inner) fill_dict(inner, v, true);
    } else if (v.is_array()) {
      inner = array_of(v);
    }
    if (inner && rte_tel_data_add_dict_container(d, tel_name(key).c_str(), inner, 0) != 0) rte_tel_data_free(inner);
  }
}

int answer(const char* cmd, const char* params, rte_tel_data* d) {
  Telemetry::Json j;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_handler) return -ENOTSUP;
    try {
      j = g_handler(cmd ? cmd : "", params ? params : "");
    } catch (const std::exception&) {
      return -EINVAL;
    }
  }
  if (!j.is_object()) return -EINVAL;
  fill_dict(d, j, false);
  return 0;
}

}  // namespace

Telemetry::Telemetry(const std::vector<std::pair<std::string, std::string>>& commands, Handler handler) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_handler = std::move(handler);
  for (const auto& [name, help] : commands) {
    if (g_registered.count(name)) continue;
    const int rc = rte_telemetry_register_cmd(name.c_str(), answer, help.c_str());
    if (rc != 0) {
      error_ += (error_.empty() ? "" : "; ") + std::string("telemetry command ") + name + ": " + std::strerror(-rc);
      continue;
    }
    g_registered.insert(name);
  }
}

Telemetry::~Telemetry() {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_handler = nullptr;
}

}  // namespace sluice::dataplane
