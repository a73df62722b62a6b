// Internal to pipeline/: compiling a Hyperscan streaming database from a small pattern table, for
// the units that own one (mime_body_scan, and the benchmark baseline tests/bench/mime_prefilter). Control plane only (allocates).
#pragma once

#include <hs/hs.h>

#include <string>

namespace sluice::pipeline {

// The database, or nullptr with `error` set ("Hyperscan: " and the compiler's message).
inline hs_database_t* compile_stream_db(const char* const* patterns, const unsigned* flags, const unsigned* ids,
                                        unsigned n, unsigned mode, std::string& error) {
  hs_database_t* db = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_compile_multi(patterns, flags, ids, n, mode, nullptr, &db, &err) != HS_SUCCESS) {
    error = std::string("Hyperscan: ") + (err && err->message ? err->message : "compile failed");
    hs_free_compile_error(err);
    return nullptr;
  }
  return db;
}

}  // namespace sluice::pipeline
