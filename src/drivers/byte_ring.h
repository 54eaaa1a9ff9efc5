#pragma once
// drivers::ByteRing<N>: a fixed ring of N bytes for input queues. Not synchronised: the owner
// guards it (drivers/input.cpp holds its wait queue's lock). A push that does not fit is refused
// whole and its bytes are counted as dropped, so the ring only ever holds complete pushes (an
// escape sequence is never cut in half by an overflow).
#include <stddef.h>
#include <stdint.h>

namespace drivers {

template <size_t N>
class ByteRing {
    static_assert(N > 0 && (N & (N - 1)) == 0, "the capacity must be a power of two");

public:
    static constexpr size_t capacity() { return N; }
    size_t size() const { return static_cast<size_t>(m_tail - m_head); }
    size_t free_space() const { return N - size(); }
    bool empty() const { return m_tail == m_head; }
    // Bytes refused since construction.
    uint64_t dropped() const { return m_dropped; }

    // Queues all `n` bytes, or none (counting them as dropped) if they do not fit.
    bool push(const uint8_t* bytes, size_t n)
    {
        if (n > free_space()) {
            m_dropped += n;
            return false;
        }
        for (size_t i = 0; i < n; ++i)
            m_bytes[(m_tail + i) & (N - 1)] = bytes[i];
        m_tail += n;
        return true;
    }
    bool push(uint8_t byte) { return push(&byte, 1); }

    // The oldest byte (0..255), or -1 when empty.
    int pop()
    {
        if (empty())
            return -1;
        const uint8_t byte = m_bytes[m_head & (N - 1)];
        ++m_head;
        return byte;
    }

    void clear() { m_head = m_tail; }

private:
    uint8_t m_bytes[N] = {};
    // Free-running counters; their difference is the fill (unsigned wrap-around is intended).
    uint64_t m_head = 0;
    uint64_t m_tail = 0;
    uint64_t m_dropped = 0;
};

} // namespace drivers
