#pragma once
// Reaches into a lib::IntrusiveList to corrupt it on purpose (invariant checker tests). One
// definition for every test file, since the list befriends exactly this class.
#include <stddef.h>

#include "lib/intrusive_list.h"

namespace lib {

struct IntrusiveListTestAccess {
    template <typename List>
    static auto& head(List& list)
    {
        return list.m_head;
    }
    template <typename List>
    static size_t& size(List& list)
    {
        return list.m_size;
    }
};

} // namespace lib
