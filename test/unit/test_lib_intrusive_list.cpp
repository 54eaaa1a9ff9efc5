// Host tests for lib/intrusive_list.h: each operation at the ends and in the middle, an element on
// two lists at once, the debug helpers against hand-made corruption, and a randomized model-based
// test against std::list.
#include <catch2/catch.hpp>

#include <cstddef>
#include <list>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "lib/intrusive_list.h"

namespace {

struct Item {
    explicit Item(int v = 0) : value(v) { }
    lib::IntrusiveListNode<Item> link;
    lib::IntrusiveListNode<Item> other; // a second list, independent of the first
    int value;
};

using List = lib::IntrusiveList<Item, &Item::link>;
using OtherList = lib::IntrusiveList<Item, &Item::other>;

template <typename L>
std::vector<int> values(const L& list)
{
    std::vector<int> out;
    for (const Item& item : list)
        out.push_back(item.value);
    return out;
}

// Walks the prev links from the back: must be the reverse of the forward walk.
template <typename L>
std::vector<int> values_backwards(const L& list)
{
    std::vector<int> out;
    for (const Item* item = list.back(); item != nullptr; item = L::prev(*item))
        out.insert(out.begin(), item->value);
    return out;
}

template <typename L>
void require_consistent(const L& list, const std::vector<int>& expected)
{
    INFO("check: " << (list.check() ? list.check() : "ok"));
    REQUIRE(list.check() == nullptr);
    REQUIRE(values(list) == expected);
    REQUIRE(values_backwards(list) == expected);
    REQUIRE(list.size() == expected.size());
    REQUIRE(list.empty() == expected.empty());
    if (expected.empty()) {
        REQUIRE(list.front() == nullptr);
        REQUIRE(list.back() == nullptr);
    } else {
        REQUIRE(list.front()->value == expected.front());
        REQUIRE(list.back()->value == expected.back());
    }
}

bool unlinked(const Item& item) { return item.link.next == nullptr && item.link.prev == nullptr; }

} // namespace

TEST_CASE("lib::IntrusiveList: layout and type properties", "[lib][intrusive_list]")
{
    // Allocator headers (slab, heap chunk) count on a node being exactly {next, prev}.
    STATIC_REQUIRE(sizeof(lib::IntrusiveListNode<Item>) == 2 * sizeof(void*));
    STATIC_REQUIRE(offsetof(lib::IntrusiveListNode<Item>, next) == 0);
    STATIC_REQUIRE(offsetof(lib::IntrusiveListNode<Item>, prev) == sizeof(void*));
    STATIC_REQUIRE(std::is_trivially_copyable_v<lib::IntrusiveListNode<Item>>);
    STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<List>);
    STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<List>);
    STATIC_REQUIRE(std::is_convertible_v<List::MutableIterator, List::ConstIterator>);
    STATIC_REQUIRE_FALSE(std::is_convertible_v<List::ConstIterator, List::MutableIterator>);
    // constinit-able (the wait queues' timeout list is a static).
    static constinit List s_list;
    CHECK(s_list.empty());
}

TEST_CASE("lib::IntrusiveList: an empty list", "[lib][intrusive_list]")
{
    List list;
    require_consistent(list, {});
    CHECK(list.pop_front() == nullptr);
    CHECK(list.begin() == list.end());
    Item a(1);
    CHECK_FALSE(list.contains(a));
}

TEST_CASE("lib::IntrusiveList: push, pop and remove", "[lib][intrusive_list]")
{
    Item a(1), b(2), c(3), d(4);
    List list;

    SECTION("push_back keeps FIFO order, pop_front takes the oldest")
    {
        list.push_back(a);
        require_consistent(list, {1});
        list.push_back(b);
        list.push_back(c);
        require_consistent(list, {1, 2, 3});
        CHECK(list.pop_front() == &a);
        CHECK(unlinked(a));
        require_consistent(list, {2, 3});
        CHECK(list.pop_front() == &b);
        CHECK(list.pop_front() == &c);
        CHECK(list.pop_front() == nullptr);
        require_consistent(list, {});
    }

    SECTION("push_front builds in reverse")
    {
        list.push_front(a);
        list.push_front(b);
        list.push_front(c);
        require_consistent(list, {3, 2, 1});
        list.push_back(d);
        require_consistent(list, {3, 2, 1, 4});
    }

    SECTION("remove at the head, the middle, the tail and the only element")
    {
        for (Item* item : {&a, &b, &c, &d})
            list.push_back(*item);
        list.remove(b);
        CHECK(unlinked(b));
        require_consistent(list, {1, 3, 4});
        list.remove(a);
        require_consistent(list, {3, 4});
        list.remove(d);
        require_consistent(list, {3});
        list.remove(c);
        CHECK(unlinked(c));
        require_consistent(list, {});
        // A removed element can join again.
        list.push_back(c);
        list.push_front(a);
        require_consistent(list, {1, 3});
    }

    SECTION("insert_before: the head, the middle, nullptr = the back, an empty list")
    {
        list.insert_before(nullptr, b); // empty list
        require_consistent(list, {2});
        list.insert_before(&b, a); // new head
        require_consistent(list, {1, 2});
        list.insert_before(nullptr, d); // new tail
        require_consistent(list, {1, 2, 4});
        list.insert_before(&d, c); // middle
        require_consistent(list, {1, 2, 3, 4});
    }

    SECTION("rotate_front_to is pop_front then push_back")
    {
        list.push_back(a);
        CHECK(list.rotate_front_to(b) == &a); // single element
        CHECK(unlinked(a));
        require_consistent(list, {2});
        list.push_back(c);
        CHECK(list.rotate_front_to(a) == &b);
        CHECK(unlinked(b));
        require_consistent(list, {3, 1});
        list.push_back(d);
        CHECK(list.rotate_front_to(b) == &c);
        require_consistent(list, {1, 4, 2});
    }

    SECTION("next and prev follow the order")
    {
        for (Item* item : {&a, &b, &c})
            list.push_back(*item);
        CHECK(List::next(a) == &b);
        CHECK(List::next(c) == nullptr);
        CHECK(List::prev(a) == nullptr);
        CHECK(List::prev(c) == &b);
    }

    SECTION("reset forgets the elements without touching them")
    {
        list.push_back(a);
        list.push_back(b);
        list.reset();
        require_consistent(list, {});
        CHECK(a.link.next == &b); // left as they were
        CHECK(b.link.prev == &a);
    }
}

TEST_CASE("lib::IntrusiveList: iteration", "[lib][intrusive_list]")
{
    Item items[5] = {Item(10), Item(20), Item(30), Item(40), Item(50)};
    List list;
    for (Item& item : items)
        list.push_back(item);

    SECTION("mutable iteration can change the elements")
    {
        for (Item& item : list)
            item.value += 1;
        CHECK(values(list) == std::vector<int>{11, 21, 31, 41, 51});
    }

    SECTION("iterator operators")
    {
        auto it = list.begin();
        CHECK(it->value == 10);
        CHECK((*it).value == 10);
        CHECK(it.get() == &items[0]);
        auto old = it++;
        CHECK(old->value == 10);
        CHECK(it->value == 20);
        ++it;
        CHECK(it->value == 30);
        List::ConstIterator cit = it;
        CHECK(cit->value == 30);
        CHECK(cit == List::ConstIterator(&items[2]));
        size_t n = 0;
        for (auto i = list.begin(); i != list.end(); ++i)
            ++n;
        CHECK(n == 5);
    }

    SECTION("removing while iterating: advance first")
    {
        for (auto it = list.begin(); it != list.end();) {
            Item& item = *it++;
            if (item.value % 20 == 0)
                list.remove(item);
        }
        require_consistent(list, {10, 30, 50});
    }
}

TEST_CASE("lib::IntrusiveList: one element on two lists", "[lib][intrusive_list]")
{
    Item a(1), b(2), c(3);
    List first;
    OtherList second;
    for (Item* item : {&a, &b, &c})
        first.push_back(*item);
    for (Item* item : {&c, &b, &a})
        second.push_back(*item);
    require_consistent(first, {1, 2, 3});
    require_consistent(second, {3, 2, 1});
    first.remove(b);
    require_consistent(first, {1, 3});
    require_consistent(second, {3, 2, 1}); // untouched
    CHECK(second.contains(b));
    CHECK_FALSE(first.contains(b));
    second.remove(b);
    require_consistent(second, {3, 1});
}

TEST_CASE("lib::IntrusiveList: contains and check see corruption", "[lib][intrusive_list]")
{
    Item a(1), b(2), c(3), stranger(9);
    List list;
    for (Item* item : {&a, &b, &c})
        list.push_back(*item);
    CHECK(list.contains(a));
    CHECK(list.contains(c));
    CHECK_FALSE(list.contains(stranger));

    SECTION("broken prev link")
    {
        c.link.prev = &a;
        CHECK(list.check() == std::string("broken prev link"));
    }
    SECTION("a cycle is bounded by the size")
    {
        c.link.next = &a;
        CHECK(list.check() == std::string("list longer than its size (cycle or duplicate)"));
        CHECK_FALSE(list.contains(stranger)); // terminates
    }
    SECTION("tail not the last element")
    {
        b.link.next = nullptr;
        CHECK(list.check() == std::string("tail is not the last element"));
    }
    SECTION("a walk cut short")
    {
        list.remove(c);
        c.link.prev = &b; // b no longer links to c, so the walk ends at b
        b.link.next = nullptr;
        CHECK(list.check() == nullptr);
        a.link.next = nullptr; // now the walk stops at a but the tail says b
        CHECK(list.check() != nullptr);
    }
}

TEST_CASE("lib::IntrusiveList: randomized against std::list", "[lib][intrusive_list]")
{
    constexpr size_t kItems = 48;
    std::mt19937_64 rng(0x1157'0011);
    for (int round = 0; round < 40; ++round) {
        std::vector<Item> items(kItems);
        for (size_t i = 0; i < kItems; ++i)
            items[i].value = static_cast<int>(i);
        List list;
        std::list<int> model;
        std::vector<bool> on_list(kItems, false);

        auto pick = [&](bool want_on) -> Item* {
            std::vector<size_t> candidates;
            for (size_t i = 0; i < kItems; ++i)
                if (on_list[i] == want_on)
                    candidates.push_back(i);
            if (candidates.empty())
                return nullptr;
            return &items[candidates[rng() % candidates.size()]];
        };
        auto model_find = [&](int value) {
            for (auto it = model.begin(); it != model.end(); ++it)
                if (*it == value)
                    return it;
            return model.end();
        };

        for (int step = 0; step < 400; ++step) {
            const unsigned op = static_cast<unsigned>(rng() % 7);
            INFO("round " << round << " step " << step << " op " << op);
            switch (op) {
            case 0: // push_back
            case 1: // push_front
                if (Item* item = pick(false)) {
                    if (op == 0) {
                        list.push_back(*item);
                        model.push_back(item->value);
                    } else {
                        list.push_front(*item);
                        model.push_front(item->value);
                    }
                    on_list[static_cast<size_t>(item->value)] = true;
                }
                break;
            case 2: // insert_before a member, or nullptr
                if (Item* item = pick(false)) {
                    Item* position = (rng() % 4 == 0) ? nullptr : pick(true);
                    list.insert_before(position, *item);
                    model.insert(position ? model_find(position->value) : model.end(), item->value);
                    on_list[static_cast<size_t>(item->value)] = true;
                }
                break;
            case 3: // remove anywhere
                if (Item* item = pick(true)) {
                    list.remove(*item);
                    model.erase(model_find(item->value));
                    on_list[static_cast<size_t>(item->value)] = false;
                    REQUIRE(unlinked(*item));
                }
                break;
            case 4: { // pop_front
                Item* item = list.pop_front();
                if (model.empty()) {
                    REQUIRE(item == nullptr);
                } else {
                    REQUIRE(item != nullptr);
                    REQUIRE(item->value == model.front());
                    model.pop_front();
                    on_list[static_cast<size_t>(item->value)] = false;
                }
                break;
            }
            case 5: // rotate_front_to on a non-empty list
                if (!model.empty()) {
                    if (Item* item = pick(false)) {
                        Item* head = list.rotate_front_to(*item);
                        REQUIRE(head->value == model.front());
                        model.pop_front();
                        model.push_back(item->value);
                        on_list[static_cast<size_t>(head->value)] = false;
                        on_list[static_cast<size_t>(item->value)] = true;
                    }
                }
                break;
            case 6: // contains agrees with membership
                if (Item* item = (rng() & 1) ? pick(true) : pick(false))
                    REQUIRE(list.contains(*item) == on_list[static_cast<size_t>(item->value)]);
                break;
            }
            require_consistent(list, std::vector<int>(model.begin(), model.end()));
        }
    }
}
