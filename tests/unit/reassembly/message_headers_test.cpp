#include "reassembly/message_headers.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

using sluice::reassembly::MessageHeaderScan;

namespace {

// The scan fed `text` cut into pieces of `piece` octets (0: whole).
std::unique_ptr<MessageHeaderScan> scan(const std::string& text, std::size_t piece = 0) {
  auto s = std::make_unique<MessageHeaderScan>();
  s->reset();
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  if (piece == 0) piece = text.size();
  for (std::size_t off = 0; off < text.size(); off += piece) s->feed(p + off, std::min(piece, text.size() - off));
  return s;
}

}  // namespace

TEST(MessageHeaderScan, TheFieldsASightingNamesWhateverTheSplit) {
  const std::string msg =
      "Received: from x\r\n"
      "From: \"Alice\" <alice@example.org>\r\n"
      "To: bob@example.net,\r\n"
      "\tcarol@example.net\r\n"
      "CC:   dave@example.net  \r\n"
      "Subject: =?UTF-8?Q?caf=C3=A9?=\r\n"
      "Message-ID: <m1@example.org>\r\n"
      "To: mallory@example.net\r\n"
      "\r\n"
      "From: not a header\r\n";
  for (std::size_t piece : {0, 1, 3, 7}) {
    SCOPED_TRACE(piece);
    const auto s = scan(msg, piece);
    EXPECT_TRUE(s->done());
    EXPECT_EQ(s->from(), "\"Alice\" <alice@example.org>");
    EXPECT_EQ(s->to(), "bob@example.net,\tcarol@example.net");  // unfolded; the first To counts
    EXPECT_EQ(s->cc(), "dave@example.net");
    EXPECT_EQ(s->subject(), "=?UTF-8?Q?caf=C3=A9?=");  // raw: decoding is MIME's
    EXPECT_EQ(s->message_id(), "<m1@example.org>");
  }
}

TEST(MessageHeaderScan, AbsentFieldsAreEmptyAndLongOnesCut) {
  const std::string long_to(2000, 'x');
  const auto s = scan("Subject: hi\nTo: " + long_to + "\n\nbody\n");
  EXPECT_TRUE(s->has_subject());
  EXPECT_FALSE(s->has_message_id());
  EXPECT_EQ(s->from(), "");
  EXPECT_EQ(s->cc(), "");
  EXPECT_EQ(s->to(), long_to.substr(0, MessageHeaderScan::kMaxValue));
}
