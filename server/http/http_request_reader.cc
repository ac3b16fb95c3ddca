// HttpRequestReader: Beast's request parser fed through a bounded window,
// with the transport's limits and refusals.
#include "server/http/http_request_reader.h"

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <exception>
#include <limits>
#include <utility>

namespace fox {
namespace http = boost::beast::http;
using boost::system::error_code;

HttpRequestReader::HttpRequestReader(size_t max_body_bytes) : max_body_bytes_(max_body_bytes) {
  parser_.header_limit(static_cast<uint32_t>(kHeadLimitBytes));
  // Checked by OnHead instead, to name the size in the 413. (Not boost::none:
  // Boost 1.74 compares lengths against it as if it were below any value.)
  parser_.body_limit(std::numeric_limits<uint64_t>::max());
  // Stop after the head, so that a 413 or "100 Continue" can go out before
  // the body is read.
  parser_.eager(false);
}

bool HttpRequestReader::IsExpectingContinue() const {
  return parser_.is_header_done() && !parser_.is_done() &&
         boost::beast::iequals(parser_.get()[http::field::expect], "100-continue");
}

HttpRequestReader::State HttpRequestReader::Parse(boost::beast::flat_buffer& buffer) {
  if (refusal_status_ != 0) return State::kRefused;
  while (!parser_.is_done()) {
    if (buffer.size() == 0) return State::kNeedMore;
    // The parser only sees this window: a head, a chunk-size line or the
    // trailers that do not fit in it are refused below instead of being
    // buffered without bound, and Beast cannot meet a field long enough to
    // make it throw (it needs 64 KiB in one field).
    const size_t window = std::min(buffer.size(), kHeadLimitBytes);
    error_code ec;
    size_t used = 0;
    try {
      used = parser_.put(boost::asio::buffer(buffer.data().data(), window), ec);
    } catch (const std::exception& e) {
      return Refuse(400, std::string("malformed HTTP request: ") + e.what());
    }
    buffer.consume(used);
    if (ec == http::error::need_more) {
      if (used > 0) continue;
      if (window < kHeadLimitBytes) return State::kNeedMore;
      ec = http::error::header_limit;  // needs more than the window to go on
    }
    if (ec == http::error::header_limit) {
      return Refuse(431,
                    parser_.is_header_done()
                        ? "request chunk-size line or trailers are over " +
                              std::to_string(kHeadLimitBytes) + " bytes"
                        : "request head is over " + std::to_string(kHeadLimitBytes) + " bytes");
    }
    if (ec == http::error::body_limit) {
      return Refuse(413, "request body is over the --max-request-bytes limit of " +
                             std::to_string(max_body_bytes_) + " bytes");
    }
    if (ec) {
      return Refuse(
          400, (is_head_reported_ ? "malformed HTTP request body: " : "malformed HTTP request: ") +
                   ec.message());
    }
    if (!is_head_reported_ && parser_.is_header_done()) return OnHead();
  }
  if (!is_head_reported_) return OnHead();  // a head with no body, done at once
  return State::kDone;
}

HttpRequestReader::State HttpRequestReader::OnHead() {
  is_head_reported_ = true;
  if (const auto length = parser_.content_length(); length && *length > max_body_bytes_) {
    return Refuse(413, "request body is " + std::to_string(*length) +
                           " bytes, over the --max-request-bytes limit of " +
                           std::to_string(max_body_bytes_));
  }
  parser_.body_limit(max_body_bytes_);
  parser_.eager(true);
  return State::kHead;
}

HttpRequestReader::State HttpRequestReader::Refuse(int status, std::string message) {
  refusal_status_ = status;
  refusal_message_ = std::move(message);
  return State::kRefused;
}

}  // namespace fox
