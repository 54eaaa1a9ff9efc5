#pragma once
// lib::IntrusiveList: the kernel's doubly linked list. The element carries the links (a
// lib::IntrusiveListNode member), so linking never allocates and an element on several lists
// has one node per list. (Two lists stay hand-rolled on purpose: the buddy allocator's free lists,
// head-only with links left stale in free memory, and the scheduler's sentinel AgeRing.)
//
//   struct Waiter { lib::IntrusiveListNode<Waiter> link; int id; };
//   lib::IntrusiveList<Waiter, &Waiter::link> queue;
//   queue.push_back(waiter);             // O(1)
//   queue.remove(waiter);                // O(1), wherever it is
//   for (Waiter& w : queue) { ... }      // front to back
//
// The list is null-terminated with a head, a tail and a size. Links point at elements (not at
// nodes), so there is no container_of arithmetic, and a node is exactly two pointers: {next, prev}
// at offsets 0 and 8, which allocator headers rely on for their size and layout.
//
// Membership is not tracked: users already know where an element is (a state, a level, a list
// id), so pushing an element that is already on a list or removing one that is on another list is
// a caller bug. contains() and check() exist for tests and debug checks; they are O(n).
//
// Node fields are public so that invariant checkers can validate raw link words (in memory that
// may be corrupt) and tests can corrupt them on purpose; only the list should write them.
// No locking: the owner serialises access.
#include <stddef.h>

#include <type_traits>

namespace lib {

struct IntrusiveListTestAccess; // test/support: lets unit tests corrupt a list on purpose

template <typename T>
struct IntrusiveListNode {
    T* next = nullptr;
    T* prev = nullptr;
};

template <typename T, IntrusiveListNode<T> T::*Member>
class IntrusiveList {
public:
    template <bool Const>
    class Iterator {
    public:
        using Element = std::conditional_t<Const, const T, T>;

        constexpr Iterator() = default;
        constexpr explicit Iterator(Element* element) : m_element(element) { }
        // A const iterator from a mutable one.
        template <bool OtherConst>
        requires(Const && !OtherConst) constexpr Iterator(const Iterator<OtherConst>& other)
            : m_element(other.get()) { }

        Element& operator*() const { return *m_element; }
        Element* operator->() const { return m_element; }
        Element* get() const { return m_element; }
        Iterator& operator++()
        {
            m_element = (m_element->*Member).next;
            return *this;
        }
        Iterator operator++(int)
        {
            Iterator old = *this;
            ++*this;
            return old;
        }
        friend bool operator==(const Iterator&, const Iterator&) = default;

    private:
        Element* m_element = nullptr;
    };
    using MutableIterator = Iterator<false>;
    using ConstIterator = Iterator<true>;

    constexpr IntrusiveList() = default;
    // A copy would share the elements' nodes with the original.
    IntrusiveList(const IntrusiveList&) = delete;
    IntrusiveList& operator=(const IntrusiveList&) = delete;

    T* front() const { return m_head; }
    T* back() const { return m_tail; }
    size_t size() const { return m_size; }
    bool empty() const { return m_head == nullptr; }

    // The element after / before `element` on its list (nullptr at the ends).
    static T* next(const T& element) { return (element.*Member).next; }
    static T* prev(const T& element) { return (element.*Member).prev; }

    // Iteration, front to back. Removing the current element invalidates its iterator: advance first.
    MutableIterator begin() { return MutableIterator(m_head); }
    MutableIterator end() { return MutableIterator(); }
    ConstIterator begin() const { return ConstIterator(m_head); }
    ConstIterator end() const { return ConstIterator(); }

    // The ends get their own code (no `position` to look at): they sit on hot paths.
    void push_back(T& element)
    {
        IntrusiveListNode<T>& node = element.*Member;
        node.next = nullptr;
        node.prev = m_tail;
        if (m_tail)
            (m_tail->*Member).next = &element;
        else
            m_head = &element;
        m_tail = &element;
        ++m_size;
    }
    void push_front(T& element)
    {
        IntrusiveListNode<T>& node = element.*Member;
        node.prev = nullptr;
        node.next = m_head;
        if (m_head)
            (m_head->*Member).prev = &element;
        else
            m_tail = &element;
        m_head = &element;
        ++m_size;
    }

    // Inserts before `position` (an element of this list); nullptr means at the back.
    void insert_before(T* position, T& element)
    {
        IntrusiveListNode<T>& node = element.*Member;
        node.next = position;
        node.prev = position ? (position->*Member).prev : m_tail;
        if (node.prev)
            (node.prev->*Member).next = &element;
        else
            m_head = &element;
        if (position)
            (position->*Member).prev = &element;
        else
            m_tail = &element;
        ++m_size;
    }

    // Unlinks `element`, which must be on this list, and clears its links.
    void remove(T& element)
    {
        IntrusiveListNode<T>& node = element.*Member;
        if (node.prev)
            (node.prev->*Member).next = node.next;
        else
            m_head = node.next;
        if (node.next)
            (node.next->*Member).prev = node.prev;
        else
            m_tail = node.prev;
        node.next = nullptr;
        node.prev = nullptr;
        --m_size;
    }

    // Unlinks and returns the head (its links cleared), nullptr when empty.
    T* pop_front()
    {
        T* const element = m_head;
        if (element == nullptr)
            return nullptr;
        IntrusiveListNode<T>& node = element->*Member;
        m_head = node.next;
        if (m_head)
            (m_head->*Member).prev = nullptr;
        else
            m_tail = nullptr;
        node.next = nullptr; // node.prev already is
        --m_size;
        return element;
    }

    // Exactly pop_front() then push_back(element) on a non-empty list (a round-robin turn), in
    // one step: returns the old head. `element` must not be on the list.
    T* rotate_front_to(T& element)
    {
        T* const head = m_head;
        IntrusiveListNode<T>& head_node = head->*Member;
        IntrusiveListNode<T>& node = element.*Member;
        T* const second = head_node.next;
        head_node.next = nullptr; // head_node.prev already is
        node.next = nullptr;
        if (second) {
            (second->*Member).prev = nullptr;
            m_head = second;
            node.prev = m_tail;
            (m_tail->*Member).next = &element;
        } else {
            m_head = &element;
            node.prev = nullptr;
        }
        m_tail = &element;
        return head;
    }

    // Forgets every element without touching their nodes (for owners that drop the elements'
    // memory wholesale, e.g. an allocator re-initialised over a new region).
    void reset()
    {
        m_head = nullptr;
        m_tail = nullptr;
        m_size = 0;
    }

    // Debug helpers, O(n). contains() stops after size() steps, so a cycle cannot hang it.
    bool contains(const T& element) const
    {
        size_t steps = 0;
        for (const T* e = m_head; e != nullptr && steps <= m_size; e = next(*e), ++steps)
            if (e == &element)
                return true;
        return false;
    }
    // Head, tail, prev links and size against a walk of the next links: nullptr when
    // consistent, else what is wrong first.
    const char* check() const
    {
        size_t count = 0;
        const T* previous = nullptr;
        for (const T* e = m_head; e != nullptr; previous = e, e = next(*e)) {
            if (++count > m_size)
                return "list longer than its size (cycle or duplicate)";
            if (prev(*e) != previous)
                return "broken prev link";
        }
        if (m_tail != previous)
            return "tail is not the last element";
        if (count != m_size)
            return "size disagrees with the length";
        return nullptr;
    }

private:
    friend struct IntrusiveListTestAccess;

    T* m_head = nullptr;
    T* m_tail = nullptr;
    size_t m_size = 0;
};

} // namespace lib
