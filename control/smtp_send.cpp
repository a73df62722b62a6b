// One message to an SMTP relay (smtp_send.h).
#include "control/smtp_send.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <mutex>

namespace sluice::control {

std::string smtp_url(const std::string& host_port) { return "smtp://" + host_port; }

std::string smtp_send(const SmtpRelay& relay, const std::string& from, const std::vector<std::string>& to,
                      const std::string& message) {
  static std::once_flag global;
  std::call_once(global, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* c = curl_easy_init();
  if (!c) return "cannot start libcurl";
  struct Reader {
    const std::string* m;
    std::size_t at = 0;
  } reader{&message};
  curl_slist* rcpts = nullptr;
  for (const auto& r : to) rcpts = curl_slist_append(rcpts, ("<" + r + ">").c_str());
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, relay.url.c_str());
  curl_easy_setopt(c, CURLOPT_MAIL_FROM, ("<" + from + ">").c_str());
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts);
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c, CURLOPT_USE_SSL, relay.starttls_required ? CURLUSESSL_ALL
                                       : relay.starttls        ? CURLUSESSL_TRY
                                                               : CURLUSESSL_NONE);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(relay.timeout_ms));
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  if (!relay.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, relay.ca_file.c_str());
  if (!relay.username.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, relay.username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, relay.password.c_str());
  }
  curl_easy_setopt(c, CURLOPT_READFUNCTION, +[](char* buf, std::size_t size, std::size_t n, void* p) -> std::size_t {
    auto* r = static_cast<Reader*>(p);
    const std::size_t k = std::min(size * n, r->m->size() - r->at);
    std::memcpy(buf, r->m->data() + r->at, k);
    r->at += k;
    return k;
  });
  curl_easy_setopt(c, CURLOPT_READDATA, &reader);
  curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.size()));
  if (relay.stopping) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(relay.stopping));
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, +[](void* p, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> int {
      return static_cast<const std::atomic<bool>*>(p)->load() ? 1 : 0;
    });
  }
  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(rcpts);
  curl_easy_cleanup(c);
  if (rc == CURLE_OK) return "";
  return std::string(curl_easy_strerror(rc)) + (errbuf[0] ? std::string(": ") + errbuf : "");
}

}  // namespace sluice::control
