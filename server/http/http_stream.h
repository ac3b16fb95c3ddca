// The byte stream under one connection: a plain TCP socket, or TLS over one.
// A variant rather than a template parameter of the session, so the session's
// logic is written once, in .cc files; each I/O call visits the variant (one
// branch), and a plain connection carries no TLS state at all.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <utility>
#include <variant>

namespace fox {

using PlainStream = boost::asio::ip::tcp::socket;
using TlsStream = boost::beast::ssl_stream<boost::asio::ip::tcp::socket>;
using HttpStream = std::variant<PlainStream, TlsStream>;

// TLS over `socket` when `tls` is set, else the socket itself.
inline HttpStream MakeHttpStream(boost::asio::ip::tcp::socket socket,
                                 boost::asio::ssl::context* tls) {
  if (tls != nullptr) return HttpStream(std::in_place_type<TlsStream>, std::move(socket), *tls);
  return HttpStream(std::in_place_type<PlainStream>, std::move(socket));
}

// The TCP socket under either kind of stream.
inline boost::asio::ip::tcp::socket& TcpSocket(HttpStream& stream) {
  if (auto* tls = std::get_if<TlsStream>(&stream)) return tls->next_layer();
  return std::get<PlainStream>(stream);
}

}  // namespace fox
