// A deliberately plain blocking HTTP/1.1 client over POSIX sockets for the
// transport tests: it sends raw bytes and parses responses by hand (status,
// headers, Content-Length or chunked framing, chunk by chunk), so the tests
// check the bytes on the wire rather than another HTTP library's view of them.
// Every read gives up after a timeout instead of hanging the test.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace fox::http_test {

struct RawResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;                                          // de-chunked
  std::vector<std::string> chunks;                           // the chunks as framed, when chunked
  bool is_chunked = false;

  std::string Header(const std::string& name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) return value;
    }
    return "";
  }
  int CountHeader(const std::string& name) const {
    int count = 0;
    for (const auto& [key, value] : headers) count += key == name;
    return count;
  }
};

class TestClient {
 public:
  // `receive_buffer_bytes` > 0 sets SO_RCVBUF before connecting: a client
  // that then reads nothing stalls the server's writes soon.
  explicit TestClient(int port, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                      int receive_buffer_bytes = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (receive_buffer_bytes > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof(receive_buffer_bytes));
    }
    timeval tv{};
    tv.tv_sec = timeout.count() / 1000;
    tv.tv_usec = (timeout.count() % 1000) * 1000;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      throw std::runtime_error("connect failed");
    }
  }
  ~TestClient() { Close(); }
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  void Send(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send failed");
      sent += static_cast<size_t>(n);
    }
  }

  // Reads until `marker` has arrived; returns everything up to and including
  // it, keeping the rest for later reads. Throws on EOF or timeout.
  std::string ReadUntil(const std::string& marker) {
    size_t found;
    while ((found = buffer_.find(marker)) == std::string::npos) Fill();
    std::string out = buffer_.substr(0, found + marker.size());
    buffer_.erase(0, found + marker.size());
    return out;
  }

  std::string ReadExactly(size_t num_bytes) {
    while (buffer_.size() < num_bytes) Fill();
    std::string out = buffer_.substr(0, num_bytes);
    buffer_.erase(0, num_bytes);
    return out;
  }

  // The head of a response: status line and headers.
  RawResponse ReadHead() {
    RawResponse response;
    const std::string head = ReadUntil("\r\n\r\n");
    size_t line_end = head.find("\r\n");
    const std::string status_line = head.substr(0, line_end);
    if (status_line.rfind("HTTP/1.", 0) != 0) throw std::runtime_error("bad status line");
    response.status = std::stoi(status_line.substr(9, 3));
    size_t pos = line_end + 2;
    while (pos < head.size() - 2) {
      line_end = head.find("\r\n", pos);
      const std::string line = head.substr(pos, line_end - pos);
      pos = line_end + 2;
      const size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t value_start = colon + 1;
      while (value_start < line.size() && line[value_start] == ' ') ++value_start;
      response.headers.emplace_back(name, line.substr(value_start));
    }
    response.is_chunked = response.Header("transfer-encoding") == "chunked";
    return response;
  }

  // One chunk of a chunked body, checking its framing; "" is the last chunk.
  std::string ReadChunk() {
    const std::string size_line = ReadUntil("\r\n");
    const size_t size = std::stoul(size_line.substr(0, size_line.size() - 2), nullptr, 16);
    std::string data = ReadExactly(size);
    if (ReadExactly(2) != "\r\n") throw std::runtime_error("chunk not followed by CRLF");
    return data;
  }

  // The remaining chunks of a chunked body, up to the last chunk.
  std::vector<std::string> ReadResponseBodyChunks() {
    std::vector<std::string> chunks;
    for (std::string chunk = ReadChunk(); !chunk.empty(); chunk = ReadChunk()) {
      chunks.push_back(std::move(chunk));
    }
    return chunks;
  }

  // A whole response (no body for 1xx, 204 and 304).
  RawResponse ReadResponse() {
    RawResponse response = ReadHead();
    if (response.status == 204 || response.status == 304 || response.status < 200) {
      return response;
    }
    if (response.is_chunked) {
      for (std::string chunk = ReadChunk(); !chunk.empty(); chunk = ReadChunk()) {
        response.body += chunk;
        response.chunks.push_back(std::move(chunk));
      }
    } else if (const std::string length = response.Header("content-length"); !length.empty()) {
      response.body = ReadExactly(std::stoul(length));
    } else {
      while (!IsEof()) {
      }
      response.body = std::move(buffer_);
      buffer_.clear();
    }
    return response;
  }

  // True once the server has closed the connection (after any buffered
  // bytes); false when bytes arrived. Throws on timeout.
  bool IsEof() {
    if (!buffer_.empty()) return false;
    char data[4096];
    const ssize_t n = ::recv(fd_, data, sizeof(data), 0);
    if (n == 0) return true;
    if (n < 0) {
      if (errno == ECONNRESET) return true;
      throw std::runtime_error("read timed out");
    }
    buffer_.append(data, static_cast<size_t>(n));
    return false;
  }

  // Waits up to `timeout` for the server to close the connection: true once
  // it has (bytes that arrive meanwhile are kept), false if still open.
  bool WaitEof(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd pfd{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
      char data[4096];
      const ssize_t n = ::recv(fd_, data, sizeof(data), 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
      if (n > 0) buffer_.append(data, static_cast<size_t>(n));
    }
  }

  const std::string& buffered() const { return buffer_; }

 private:
  void Fill() {
    char data[65536];
    const ssize_t n = ::recv(fd_, data, sizeof(data), 0);
    if (n == 0) throw std::runtime_error("connection closed by server");
    if (n < 0) throw std::runtime_error("read timed out or failed");
    buffer_.append(data, static_cast<size_t>(n));
  }

  int fd_ = -1;
  std::string buffer_;
};

// Polls `condition` until it holds or `timeout` passes; returns whether it held.
inline bool WaitFor(const std::function<bool()>& condition,
                    std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace fox::http_test
