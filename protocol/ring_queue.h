#pragma once

// A FIFO over a power-of-two ring that grows by doubling and never shrinks: requests in flight
// and reply slots are pushed and popped per request without touching the allocator once the
// connection has reached its working depth.

#include <cstddef>
#include <utility>
#include <vector>

namespace cachegate::protocol {

template <class T>
class RingQueue {
 public:
  bool empty() const { return head_ == tail_; }
  size_t size() const { return tail_ - head_; }

  T& front() { return slots_[head_ & mask_]; }
  T& back() { return slots_[(tail_ - 1) & mask_]; }
  // The i-th element from the front.
  T& operator[](size_t i) { return slots_[(head_ + i) & mask_]; }

  void push_back(T value) {
    if (size() == slots_.size()) grow();
    slots_[tail_ & mask_] = std::move(value);
    ++tail_;
  }
  // Moves the front element out.
  T pop_front() {
    T value = std::move(slots_[head_ & mask_]);
    ++head_;
    return value;
  }

 private:
  void grow() {
    size_t n = slots_.empty() ? 16 : slots_.size() * 2;
    std::vector<T> bigger(n);
    size_t count = size();
    for (size_t i = 0; i < count; ++i)
      bigger[i] = std::move(slots_[(head_ + i) & mask_]);
    slots_ = std::move(bigger);
    mask_ = n - 1;
    head_ = 0;
    tail_ = count;
  }

  std::vector<T> slots_;
  size_t mask_ = 0;
  size_t head_ = 0;  // monotonically increasing; indexes are taken modulo the size
  size_t tail_ = 0;
};

}  // namespace cachegate::protocol
