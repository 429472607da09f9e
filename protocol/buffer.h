#pragma once

// A contiguous byte buffer with a read cursor and a write cursor.
//
// Sockets read into the tail, parsers look at [data(), data() + size()) in place, and consume()
// drops what was handled. Storage is raw (never zero-filled) and is reused: it only grows when a
// frame does not fit, and the caller checks its own bound before asking for more. Parsers keep
// offsets, not pointers, into it, because growing moves the bytes.

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>

namespace cachegate::protocol {

class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t initial_capacity) { reserve(initial_capacity); }
  ~Buffer() { std::free(storage_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& other) noexcept
      : storage_(other.storage_),
        capacity_(other.capacity_),
        begin_(other.begin_),
        end_(other.end_) {
    other.storage_ = nullptr;
    other.capacity_ = other.begin_ = other.end_ = 0;
  }
  Buffer& operator=(Buffer&& other) noexcept {
    if (this != &other) {
      std::free(storage_);
      storage_ = other.storage_;
      capacity_ = other.capacity_;
      begin_ = other.begin_;
      end_ = other.end_;
      other.storage_ = nullptr;
      other.capacity_ = other.begin_ = other.end_ = 0;
    }
    return *this;
  }

  // Readable bytes.
  const char* data() const { return storage_ + begin_; }
  char* data() { return storage_ + begin_; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return end_ == begin_; }
  std::string_view view() const { return {data(), size()}; }
  size_t capacity() const { return capacity_; }

  // Drops n readable bytes from the front.
  void consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;  // cheap reset keeps the next read at offset 0
  }
  void clear() { begin_ = end_ = 0; }

  // Writable space after the readable bytes.
  char* write_ptr() { return storage_ + end_; }
  size_t writable() const { return capacity_ - end_; }
  void commit(size_t n) { end_ += n; }

  // Makes room for at least n more bytes after the readable ones: first by moving the readable
  // bytes to the front, then by growing (doubling) the storage.
  void ensure_writable(size_t n) {
    if (writable() >= n) return;
    if (capacity_ - size() >= n) {  // moving the (usually short) partial frame is enough
      compact();
      return;
    }
    size_t needed = size() + n;
    size_t cap = capacity_ ? capacity_ : 512;
    while (cap < needed)
      cap *= 2;
    if (begin_ > 0) compact();
    reserve(cap);
  }

  void append(const void* bytes, size_t n) {
    if (n == 0) return;  // storage may not exist yet, and memcpy from/to null is undefined
    ensure_writable(n);
    std::memcpy(storage_ + end_, bytes, n);
    end_ += n;
  }
  void append(std::string_view s) { append(s.data(), s.size()); }

  // Moves readable bytes to offset 0.
  void compact() {
    if (begin_ == 0) return;
    size_t n = size();
    if (n) std::memmove(storage_, storage_ + begin_, n);
    begin_ = 0;
    end_ = n;
  }

  // Releases storage above `keep` bytes when the buffer is empty, so one huge frame does not pin
  // its memory for the life of a connection.
  void shrink_if_idle(size_t keep) {
    if (empty() && capacity_ > keep) {
      std::free(storage_);
      storage_ = nullptr;
      capacity_ = 0;
      begin_ = end_ = 0;
      if (keep) reserve(keep);
    }
  }

 private:
  void reserve(size_t cap) {
    if (cap <= capacity_) return;
    char* p = static_cast<char*>(std::realloc(storage_, cap));
    if (p == nullptr) throw std::bad_alloc();
    storage_ = p;
    capacity_ = cap;
  }

  char* storage_ = nullptr;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace cachegate::protocol
